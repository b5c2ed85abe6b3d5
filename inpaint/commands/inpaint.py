"""Inpaints an image, or many, with DeepFill v2, with the original test.py's flags.

    python test.py --image input.png --mask mask.png --output output.png --checkpoint_dir DIR
    python test.py --flist jobs.txt --checkpoint_dir DIR
    python test.py --input_dir in/ --mask_dir masks/ --output_dir out/ --checkpoint_dir DIR
    python test.py --input_dir in/ --mask mask.png --output_dir out/ --checkpoint_dir DIR
    python test.py --image input.png --edge sketch.png --mask mask.png --checkpoint_dir GUIDED

The same command is `deepfill-inpaint` (installed) and `python -m inpaint.commands.inpaint`.
DIR is the authors' release folder (`checkpoint` or `checkpoint.txt`), a checkpoint prefix, or a
log_dir written by train.py. By default any image size works and pixels outside the hole are kept;
`--original` reproduces the authors' test.py exactly (crop to a multiple of 8, truncating cast).

Edge-guided models (trained with `guided: True`) take an edge image beside each image: white
lines on black (any colour, or paint on a transparent layer), the image's size; only the lines
inside the hole guide the fill. `--edge` gives it in single mode (with `--original`, read as
the authors' server graph reads it: OpenCV's first channel / 255 > 0.6). Batch modes: `--edge_dir`
with `--input_dir` (matched by stem, as `--mask_dir`); in a `--flist`, a fourth column, or else
the original's `<stem>_edge.<ext>` beside the input (the column wins). A guided model without an
edge inpaints with no lines (a warning says so); an edge for a model that is not guided is
refused before any image is inpainted (exit 2).

Batch modes (see `inpaint/batch.py`): `--flist` is the authors' batch_test.py list, one
`input mask output [edge]` per line, relative paths resolved against the list's folder; `--input_dir`
takes every image of a folder, with masks matched by file stem in `--mask_dir` or one shared
`--mask` file, and writes `<output_dir>/<stem>.png`. Each output is written as soon as it is
ready. A finished output (it decodes and has the input's size) is skipped, so a rerun resumes;
with `--overwrite` existing output images are replaced. Any other file at an output path is
reported and kept (an empty one is redone), and a file that is not an image is never replaced. A
bad item is reported and skipped. The run ends with one `path: reason` line per failed item and a
summary line on stdout. Single mode refuses an existing `--output` unless `--overwrite` (and then
only if it is an image).

Exit codes: 0 done; 1 (batch) some items failed, the others were written; 2 bad flags or input
(one line on stderr naming the file; single mode writes nothing), unloadable checkpoint, missing
list or folder; 130 (batch) interrupted by Ctrl-C (SIGINT) or SIGTERM: the current image is
finished and written, then the summary counts the jobs not started (a rerun resumes).
TensorFlow's start-up lines are hidden unless `--verbose`.
"""
import os
import sys

from absl import logging

from inpaint.commands import run
from inpaint.commands.parsing import Parser, UsageError

PROG = 'test.py'


def build_parser(prog=PROG):
    """The flags of the original's test.py, and the batch modes'."""
    parser = Parser(prog, __doc__)
    parser.add_argument('--image', help='single mode: image to complete (any size, gray/RGB/RGBA)')
    parser.add_argument('--mask', help='mask file of the image\'s size: white (255), 1 or any '
                                       'colour on black = hole, or paint on a transparent PNG '
                                       '(single mode; with --input_dir, one mask for every image)')
    parser.add_argument('--output', help='single mode: where to write the result (default output.png)')
    parser.add_argument('--edge', help='single mode, edge-guided models: the edge image (white '
                                       'lines on black, the image\'s size); lines inside the hole '
                                       'guide the fill')
    parser.add_argument('--checkpoint_dir', required=True,
                        help='release folder, checkpoint prefix or train.py log_dir')
    parser.add_argument('--original', action='store_true',
                        help="reproduce the authors' test.py: crop to a multiple of 8, float "
                             'composite cast with truncation')
    batch = parser.add_argument_group('batch modes')
    batch.add_argument('--flist', help='file list, one "input mask output [edge]" per line (no '
                                       'edge column: <stem>_edge.<ext> beside the input, if any)')
    batch.add_argument('--input_dir', help='folder of images to complete')
    batch.add_argument('--mask_dir', help='with --input_dir: masks named as the images (any '
                                          'image extension)')
    batch.add_argument('--output_dir', help='with --input_dir: results as <stem>.png')
    batch.add_argument('--edge_dir', help='with --input_dir, edge-guided models: edge images '
                                          'named as the images (any image extension)')
    parser.add_overwrite('existing output images (default: single mode refuses an existing '
                         '--output, batch modes skip finished outputs, resuming a run)')
    batch.add_argument('--batch_size', type=int,
                       help='images per network call (default 1: each output is written as soon '
                            'as it is ready; larger batches can be faster on a GPU)')
    parser.add_argument('--precision', choices=('float32', 'bfloat16'), default='float32',
                        help='bfloat16: convolutions in bfloat16 (attention stays float32), about '
                             '1.3x faster on CPUs with AVX512-BF16 or AMX, hole within ~40 dB PSNR '
                             'of float32; not with --original')
    return parser


def cpu_has_bfloat16():
    """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); None if unknown."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as handle:
            flags = next((line for line in handle if line.startswith('flags')), '').split()
    except OSError:
        return None
    return bool({'avx512_bf16', 'amx_bf16'} & set(flags)) if flags else None


def check_flags(parser, args):
    """Exactly one mode, and only its flags.

    Raises:
        UsageError: another combination.
    """
    modes = [flag for flag, value in (('--image', args.image), ('--flist', args.flist),
                                      ('--input_dir', args.input_dir)) if value is not None]
    if len(modes) != 1:
        parser.error(f'give exactly one of --image (one image), --flist or --input_dir (batch); '
                     f'got {", ".join(modes) or "none"}')
    given = {flag for flag, value in (
        ('--mask', args.mask), ('--output', args.output), ('--mask_dir', args.mask_dir),
        ('--output_dir', args.output_dir), ('--overwrite', args.overwrite or None),
        ('--batch_size', args.batch_size), ('--edge', args.edge),
        ('--edge_dir', args.edge_dir)) if value is not None}
    allowed = {'--image': {'--mask', '--output', '--overwrite', '--edge'},
               '--flist': {'--overwrite', '--batch_size'},
               '--input_dir': {'--mask', '--mask_dir', '--output_dir', '--overwrite',
                               '--batch_size', '--edge_dir'}}[modes[0]]
    if given - allowed:
        parser.error(f'{", ".join(sorted(given - allowed))} cannot be used with {modes[0]}')
    if modes[0] == '--image' and args.mask is None:
        parser.error('--image needs --mask')
    if modes[0] == '--input_dir':
        if (args.mask is None) == (args.mask_dir is None):
            parser.error('--input_dir needs exactly one of --mask_dir (masks named as the images) '
                         'or --mask (one mask for all)')
        if args.output_dir is None:
            parser.error('--input_dir needs --output_dir')
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f'--batch_size must be at least 1, got {args.batch_size}')
    if args.original and args.precision != 'float32':
        parser.error('--original reproduces the authors\' float32 graph; drop --precision')
    if args.precision == 'bfloat16' and cpu_has_bfloat16() is False:
        logging.warning('--precision bfloat16: this CPU has no AVX512-BF16 or AMX, so bfloat16 is '
                        'likely slower than float32 here (unless a GPU runs the model)')


def main(argv=None, prog=PROG):
    """Inpaints; returns the exit code (see the module docstring)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        check_flags(parser, args)
    except UsageError as error:
        return parser.fail(error)
    if args.image is None:
        try:
            return run_batch_mode(parser, args)
        except KeyboardInterrupt:  # while loading (run_batch handles its own): nothing started
            parser.note('interrupted before any image was inpainted; nothing written')
            return 130
    args.output = 'output.png' if args.output is None else args.output
    from inpaint.checkpoint import CheckpointError
    from inpaint.imageio import (InputError, check_output_path, read_edge, read_pair,
                                 replaceable_output, write_image)
    from inpaint.inference import Inpainter

    try:
        inputs = [path for path in (args.image, args.mask, args.edge) if path is not None]
        if os.path.abspath(args.output) in map(os.path.abspath, inputs):
            raise InputError(f'{args.output}: the output would overwrite an input; choose another '
                             f'--output')
        check_output_path(args.output)  # before the model and the inference (minutes at 2048 px)
        image, mask = read_pair(args.image, args.mask, original=args.original)
        edge = None if args.edge is None else read_edge(
            args.edge, original=args.original, image_shape=image.shape, image_name=args.image)
        inpainter = Inpainter.from_checkpoint(args.checkpoint_dir, precision=args.precision)
        check_guidance(inpainter, f'--edge {args.edge}' if args.edge else None,
                       missing=f'{args.image}: no --edge')
        problem = replaceable_output(args.output, args.overwrite)  # bad inputs are named first
        if problem:
            raise InputError(problem)
        result = inpainter.inpaint(image, mask, edge, original=args.original)
        write_image(args.output, result)
    except (InputError, CheckpointError) as error:
        return parser.fail(error)
    except OSError as error:  # an unreadable input, a full disk while writing
        return parser.fail(f'{error.filename or args.output}: {error.strerror or error}')
    logging.info('wrote %s (%dx%d)', args.output, result.shape[1], result.shape[0])
    print(f'Inpainted {args.image} -> {args.output} ({result.shape[1]}x{result.shape[0]})')
    return 0


def check_guidance(inpainter, given, missing):
    """Refuses edges for a model that is not guided; warns when a guided model gets none.

    Args:
        inpainter: the loaded `Inpainter`.
        given: what gave edge images (e.g. '--edge sketch.png'), or None.
        missing: what has no edge image (e.g. 'photo.png: no --edge'), or None when all have one.
    Raises:
        InputError: `given` for a model that is not guided (`generator.NOT_GUIDED`).
    """
    from inpaint.generator import NOT_GUIDED
    from inpaint.imageio import InputError

    if given and not inpainter.generator.guided:
        raise InputError(f'{given}: {NOT_GUIDED}')
    if missing and inpainter.generator.guided:
        logging.warning('%s: this model is edge-guided, so it is inpainted without lines; give '
                        'edge images (white lines on black) to guide the fill', missing)


def run_batch_mode(parser, args):
    """--flist or --input_dir: returns 0 (all done), 1 (some items failed), 2 (cannot start) or
    130 (interrupted by SIGINT or SIGTERM; what was written stays, a rerun resumes)."""
    from inpaint import batch
    from inpaint.checkpoint import CheckpointError
    from inpaint.imageio import InputError, check_output_folder
    from inpaint.inference import Inpainter

    try:
        if args.flist is not None:
            jobs = batch.jobs_from_flist(args.flist)
        else:
            if args.mask_dir is not None and not os.path.isdir(args.mask_dir):
                raise InputError(f'{args.mask_dir}: --mask_dir is not a folder; give a folder of '
                                 f'masks, or one mask file with --mask')
            if args.mask is not None and os.path.isdir(args.mask):
                raise InputError(f'{args.mask}: --mask is a folder; use --mask_dir for a folder '
                                 f'of masks')
            jobs = batch.jobs_from_folders(args.input_dir, args.mask_dir or args.mask,
                                           args.output_dir, args.edge_dir)
            check_output_folder(args.output_dir)
        inpainter = Inpainter.from_checkpoint(args.checkpoint_dir, precision=args.precision)
        if args.flist is not None:
            listed = sum(job.edge is not None for job in jobs)
            check_guidance(inpainter, f'{args.flist}: {listed} line(s) with a fourth column (an '
                                      f'edge image)' if listed else None, None)
            if inpainter.generator.guided:  # the original's convention, for guided models only
                jobs, missing = batch.edges_beside(jobs)
                check_guidance(inpainter, None, f'{args.flist}: {missing} of {len(jobs)} images '
                               f'have no edge image (no fourth column, no '
                               f'<stem>{batch.EDGE_SUFFIX}.<ext> beside the input)' if missing else None)
        elif args.edge_dir is not None:
            check_guidance(inpainter, f'--edge_dir {args.edge_dir}', None)
        else:
            check_guidance(inpainter, None, f'{args.input_dir}: no --edge_dir')
    except (InputError, CheckpointError) as error:
        return parser.fail(error)
    summary = batch.run_batch(inpainter, jobs, overwrite=args.overwrite, original=args.original,
                              batch_size=args.batch_size or 1)
    print('\n'.join(summary.lines()))
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0


if __name__ == '__main__':
    sys.exit(run(main))
