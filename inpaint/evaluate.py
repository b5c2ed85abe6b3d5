"""Evaluates DeepFill and classical baselines: PSNR, SSIM, L1, L2 and time, with reports and figures.

    python -m inpaint.evaluate --flist /work/shared/data/imagenet_sample/val.flist \
        --output_dir runs/eval --methods deepfill,telea,ns --checkpoint_dir checkpoints/places2

    # baselines only, on a folder, at each image's own size
    python -m inpaint.evaluate --image_dir photos/ --output_dir runs/eval_native \
        --methods telea,ns --resolution native

    # the same masks again (those saved by a previous run)
    python -m inpaint.evaluate --flist val.flist --output_dir runs/eval2 --methods telea \
        --mask_dir runs/eval/masks

Flags:
    --flist / --image_dir   images: a list (one path per line, relative to the list's folder) or a
                            folder (sorted); the position in the list is the mask index.
    --output_dir            where per_image.csv, summary.json, summary.md, figures/, masks/ and
                            (with --save_outputs) outputs/ go.
    --methods               comma-separated from deepfill, telea, ns (default deepfill,telea,ns).
    --checkpoint_dir        the DeepFill checkpoint (required with deepfill).
    --families              generated mask families, comma-separated (default box,line_circle).
    --seed                  seed of the generated masks (default 0).
    --mask_dir              mask files instead (matched by image stem; a folder of masks = one
                            family, or one sub-folder per family like <output_dir>/masks).
    --resolution            N for N x N (default 256, as the release was trained) or native.
    --save_outputs          also write every output image.
    --limit                 evaluate only the first N images.
    --overwrite             replace an earlier evaluation's reports in --output_dir (without it,
                            such a folder is refused; other files there are never touched).
    --[no-]figures, --[no-]progress
    --verbose               show TensorFlow's start-up lines (hidden by default).

Exit codes: 0 all cases evaluated; 1 some images (or methods on them) failed and were skipped;
2 bad flags or unusable inputs (missing list, unknown method, ...), with a one-line message.
See `inpaint/evaluation/` for the metrics' exact definitions and the protocol.
"""
import argparse
import sys

from inpaint import commands, evaluation
from inpaint.imageio import InputError, check_output_folder

METHODS = ('deepfill',) + tuple(evaluation.BASELINES)
DEFAULT_FAMILIES = 'box,line_circle'


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so `main` returns the exit code."""

    def error(self, message):
        raise InputError(message)


def _parser():
    parser = _Parser(prog='python -m inpaint.evaluate', description=__doc__.split('\n')[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--flist', help='file list: one image path per line, relative to the list')
    source.add_argument('--image_dir', help='folder of images (sorted by name)')
    parser.add_argument('--output_dir', required=True, help='folder for the reports (created)')
    parser.add_argument('--methods', default=','.join(METHODS), help=f'comma-separated from {METHODS}')
    parser.add_argument('--checkpoint_dir', help='DeepFill checkpoint folder (for --methods deepfill)')
    parser.add_argument('--families', default=None, help=f'generated mask families (default {DEFAULT_FAMILIES})')
    parser.add_argument('--seed', type=int, default=0, help='seed of the generated masks')
    parser.add_argument('--mask_dir', help='mask files matched by image stem, instead of --families')
    parser.add_argument('--resolution', default='256', help='N (N x N, default 256) or "native"')
    parser.add_argument('--save_outputs', action='store_true', help='write every output image')
    parser.add_argument('--overwrite', action='store_true',
                        help="replace an earlier evaluation's reports in --output_dir (its other "
                             "files are never touched)")
    parser.add_argument('--limit', type=int, default=None, help='only the first N images')
    parser.add_argument('--figures', action=argparse.BooleanOptionalAction, default=True,
                        help='write the PNG figures')
    parser.add_argument('--progress', action=argparse.BooleanOptionalAction, default=True,
                        help='show a progress bar')
    parser.add_argument('--verbose', action='store_true', help=commands.VERBOSE_HELP)
    return parser


def _split(value):
    return [part.strip() for part in value.split(',') if part.strip()]


def build_methods(names, checkpoint_dir):
    """{name: callable(image, mask) -> image} for the names; loads the checkpoint for deepfill."""
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names or len(set(names)) != len(names):
        raise InputError(f'--methods {",".join(names)!r}: give distinct names from {",".join(METHODS)}')
    methods = {}
    for name in names:
        if name == 'deepfill':
            if not checkpoint_dir:
                raise InputError('--methods deepfill needs --checkpoint_dir (the checkpoint folder)')
            # Imported here: TensorFlow is loaded only when the model is evaluated.
            from inpaint.checkpoint import CheckpointError
            from inpaint.inference import Inpainter
            try:
                methods[name] = Inpainter.from_checkpoint(checkpoint_dir).inpaint
            except CheckpointError as error:
                raise InputError(f'--checkpoint_dir: {error}') from error
        else:
            methods[name] = evaluation.BASELINES[name]
    return methods


def main(argv=None):
    """Runs the evaluation.

    Args:
        argv: the arguments without the program name (default `sys.argv[1:]`).
    Returns:
        0 if every case was evaluated, 1 if some were skipped, 2 for bad flags or inputs.
    """
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
        if args.mask_dir and args.families is not None:
            raise InputError('give either --mask_dir or --families, not both')
        if args.limit is not None and args.limit < 1:
            raise InputError(f'--limit {args.limit}: give a positive number of images')
        resolution = evaluation.parse_resolution(args.resolution)
        check_output_folder(args.output_dir)  # before the model and any evaluation
        problem = evaluation.report_folder_problem(args.output_dir, args.overwrite)
        if problem:
            raise InputError(problem)
        items = evaluation.list_items(args.flist or args.image_dir)[:args.limit]
        if args.mask_dir:
            masks = evaluation.MaskDir(args.mask_dir)
        else:
            masks = evaluation.GeneratedMasks(_split(args.families or DEFAULT_FAMILIES), args.seed)
        methods = build_methods(_split(args.methods), args.checkpoint_dir)
        result = evaluation.run_evaluation(items, args.output_dir, methods, masks, resolution=resolution,
                                           save_outputs=args.save_outputs, figures=args.figures,
                                           progress=args.progress, overwrite=args.overwrite)
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except InputError as error:
        print(f'evaluate: error: {error}', file=sys.stderr)
        return 2
    print(f'evaluate: {len(result.records)} results, {len(result.failures)} skipped; '
          f'report in {result.files["summary.md"]}')
    return 0 if result.ok else 1


if __name__ == '__main__':
    sys.exit(commands.run(main))
