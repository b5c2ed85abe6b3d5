"""Converts a checkpoint to the backend-neutral weights folder, or to the authors' TF1 layout.

    python -m inpaint.commands.convert checkpoints/release_places2_256 checkpoints/places2
    python -m inpaint.commands.convert logs/run1 mine/                  # a training run's weights
    python -m inpaint.commands.convert checkpoints/default mine/snap-0 --format tf1

SRC is any loadable checkpoint: the authors' release folder or prefix (reading it needs
TensorFlow), a train.py log_dir, or a weights folder. DST is a weights folder (loadable on every
backend) or, with `--format tf1`, a checkpoint prefix the original code reads. DST may not be SRC
(nor inside or above it) nor lie inside a training run; an earlier conversion at DST is replaced
only with `--overwrite`, and nothing else ever is.

Exit codes: 0 converted; 2 SRC cannot be loaded or DST cannot be written, with a one-line message.
"""
import sys

from inpaint.commands import run
from inpaint.commands.parsing import Parser, UsageError

PROG = 'python -m inpaint.commands.convert'


def build_parser(prog=PROG):
    """The converter's flags: source, destination and format."""
    parser = Parser(prog, __doc__)
    parser.add_argument('source', help='the checkpoint to convert')
    parser.add_argument('destination', help='the weights folder (or, with --format tf1, prefix) to write')
    parser.add_argument('--format', choices=('weights', 'tf1'), default='weights',
                        help='weights (default): the backend-neutral folder; tf1: the authors\' layout')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an earlier conversion at DST (nothing else is replaced)')
    return parser


def main(argv=None, prog=PROG):
    """Converts; returns the exit code (see the module docstring)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return parser.fail(error)
    from inpaint import checkpoint  # imports Keras, and so TensorFlow
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
