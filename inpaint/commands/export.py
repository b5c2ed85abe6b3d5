"""Exports the generator for serving as a TensorFlow SavedModel, ONNX or TFLite file.

    python -m inpaint.commands.export --checkpoint_dir DIR --format saved_model exported/deepfill
    python -m inpaint.commands.export --checkpoint_dir DIR --format onnx --height 512 --width 512 \
        deepfill.onnx
    python -m inpaint.commands.export --checkpoint_dir DIR --format tflite --height 512 --width 512 \
        deepfill.tflite

The same command is `deepfill-export` (installed). Every format holds the same end-to-end
function: uint8 RGB image and mask in (and the edge image, for an edge-guided model), uint8 RGB
inpainted image (and the network's x_stage2) out;
see `inpaint/export_formats.py` for the inputs, outputs and what each format needs. Without
`--height/--width`, any size and batch; with them, a fixed (1, H, W) (TFLite needs it). After
writing, the artifact is run on a test image next to the Keras model and the largest difference
is printed. Nothing but an earlier export of the same format is ever replaced, and only with
`--overwrite`; the extension must fit the format (`.onnx`, `.tflite`; a SavedModel is a folder).

Exit codes: 0 written and checked; 2 bad flags, no TensorFlow (every format is written through it:
`pip install 'deepfill-tf2[export]'`), an output path that may not be written, an unloadable
checkpoint, or a format that cannot express the model (one line naming what blocks it).
"""
import sys

from inpaint import export_formats, extras
from inpaint.commands import run
from inpaint.commands.parsing import Parser, UsageError

PROG = 'python -m inpaint.commands.export'


def build_parser(prog=PROG):
    """The exporter's flags: checkpoint, format, size and output path."""
    parser = Parser(prog, __doc__)
    parser.add_argument('output', help='where to write: a folder (saved_model) or a file '
                                       '(.onnx, .tflite)')
    parser.add_argument('--checkpoint_dir', required=True,
                        help='release folder, checkpoint prefix or train.py log_dir')
    parser.add_argument('--format', required=True, choices=export_formats.FORMATS)
    parser.add_argument('--height', type=int, help='fixed input height (default: any)')
    parser.add_argument('--width', type=int, help='fixed input width (default: any)')
    parser.add_overwrite('an earlier export of the same format at the output path')
    return parser


def main(argv=None, prog=PROG):
    """Exports a checkpoint; returns the exit code (see the module docstring)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        export_formats.check_request(args.format, args.height, args.width)
        missing = extras.packages_missing(f'exporting ({args.format})',
                                          export_formats.PACKAGES[args.format], 'export')
        if missing:
            raise UsageError(missing)
        protected = export_formats.checkpoint_paths(args.checkpoint_dir)
        export_formats.check_target(args.format, args.output, args.overwrite, protected)
    except (UsageError, export_formats.ExportError) as error:
        return parser.fail(error)
    from inpaint.checkpoint import CheckpointError
    from inpaint.inference import Inpainter
    try:
        generator = Inpainter.from_checkpoint(args.checkpoint_dir).generator
        diff, changed = export_formats.export(generator, args.format, args.output, args.height,
                                              args.width, args.overwrite, protected)
    except (export_formats.ExportError, CheckpointError) as error:
        return parser.fail(error)
    except OSError as error:  # e.g. the disk filled up or the folder became read-only meanwhile
        return parser.fail(f'{error.filename or args.output}: {error.strerror or error}; nothing '
                           f'was written there: free space or fix the folder\'s permissions')
    size = 'any size' if args.height is None else f'{args.width}x{args.height}'
    print(f'wrote {args.output} ({args.format}, {size}); checked against Keras on a test image: '
          f'max |x_stage2 difference| {diff:.2g}, {changed} inpainted values differ')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
