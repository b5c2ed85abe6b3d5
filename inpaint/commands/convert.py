"""Converts a checkpoint to the backend-neutral weights folder, or to the authors' TF1 layout.

    python -m inpaint.commands.convert checkpoints/release_places2_256 checkpoints/places2
    python -m inpaint.commands.convert logs/run1 mine/                  # a training run's weights
    python -m inpaint.commands.convert checkpoints/default mine/snap-0 --format tf1
    python -m inpaint.commands.convert --verify checkpoints/release_places2_256

SRC is any loadable checkpoint: the authors' release folder or prefix (reading it needs
TensorFlow), a train.py log_dir, or a weights folder. DST is a weights folder (loadable on every
backend) or, with `--format tf1`, a checkpoint prefix the original code reads. DST may not be SRC
(nor inside or above it) nor lie inside a training run; an earlier conversion at DST is replaced
only with `--overwrite`, and nothing else ever is.

`--verify DIR` checks a download of the authors' release instead (`releases.verify`): which
release DIR holds and whether its data file is intact (size and sha256).

Exit codes: 0 converted (or, with --verify, intact); 1 (--verify) the release's data file is
missing, incomplete or damaged; 2 SRC cannot be loaded, DST cannot be written, or (--verify) DIR
is not one of the releases, with a one-line message.
"""
import sys

from inpaint.commands import run
from inpaint.commands.parsing import Parser, UsageError

PROG = 'python -m inpaint.commands.convert'


def build_parser(prog=PROG):
    """The converter's flags: source, destination and format."""
    parser = Parser(prog, __doc__)
    parser.add_argument('source', nargs='?', help='the checkpoint to convert')
    parser.add_argument('destination', nargs='?',
                        help='the weights folder (or, with --format tf1, prefix) to write')
    parser.add_argument('--format', choices=('weights', 'tf1'), default='weights',
                        help='weights (default): the backend-neutral folder; tf1: the authors\' layout')
    parser.add_overwrite('an earlier conversion at DST')
    parser.add_argument('--verify', metavar='DIR', help="check a download of the authors' release "
                        '(which one, and whether its data file is intact) instead of converting')
    return parser


def main(argv=None, prog=PROG):
    """Converts; returns the exit code (see the module docstring)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        if args.verify is not None and args.source is not None:
            raise UsageError('--verify DIR takes no SRC or DST')
        if args.verify is None and args.destination is None:
            raise UsageError('give SRC and DST (or --verify DIR)')
    except UsageError as error:
        return parser.fail(error)
    from inpaint import checkpoint, releases  # imports Keras and its backend: after the flags
    if args.verify is not None:
        try:
            code, lines = releases.verify(checkpoint.resolve_prefix(args.verify))
        except checkpoint.CheckpointError as error:
            code, lines = 2, [str(error)]
        if code == 2:
            return parser.fail(lines[0])
        print('\n'.join(lines))
        return code
    try:
        report = checkpoint.convert(args.source, args.destination, args.format, args.overwrite)
    except checkpoint.CheckpointError as error:
        return parser.fail(error)
    print(f'{report.prefix} -> {args.destination} ({args.format}; generator width '
          f'{report.generator_cnum}, discriminator {report.discriminator_cnum}'
          f'{", edge-guided" if report.guided else ""})')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
