"""Evaluates DeepFill and classical baselines: PSNR, SSIM, L1, L2 and time, with reports and figures.

    python -m inpaint.commands.evaluate --flist /work/shared/data/imagenet_sample/val.flist \
        --output_dir runs/eval --methods deepfill,telea,ns --checkpoint_dir checkpoints/places2

    # baselines only, on a folder, at each image's own size
    python -m inpaint.commands.evaluate --image_dir photos/ --output_dir runs/eval_native \
        --methods telea,ns --resolution native

    # the same masks again (those saved by a previous run)
    python -m inpaint.commands.evaluate --flist val.flist --output_dir runs/eval2 --methods telea \
        --mask_dir runs/eval/masks

The same command is `deepfill-evaluate` (installed). Images come from a list (one path per line,
relative to the list's folder) or a folder (sorted); the position in the list is the mask index.
`--output_dir` receives per_image.csv, summary.json, summary.md, figures/, masks/ and (with
`--save_outputs`) outputs/; a folder holding an earlier evaluation's reports is refused unless
`--overwrite` (its other files are never touched). Masks are generated (`--families`, `--seed`) or read from
`--mask_dir` (matched by image stem; a folder of masks is one family, or one sub-folder per
family like <output_dir>/masks).

Exit codes: 0 all cases evaluated; 1 some images (or methods on them) failed and were skipped;
2 bad flags or unusable inputs (missing list, unknown method, ...), with a one-line message.
See `inpaint/evaluation/` for the metrics' exact definitions and the protocol.
"""
import argparse
import sys

from inpaint import evaluation
from inpaint.commands import run
from inpaint.commands.parsing import Parser, UsageError
from inpaint.imageio import InputError, check_output_folder

PROG = 'python -m inpaint.commands.evaluate'
DEFAULT_FAMILIES = 'box,line_circle'


def build_parser(prog=PROG):
    """The evaluation's flags: images, methods, masks, resolution, outputs."""
    parser = Parser(prog, __doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--flist', help='file list: one image path per line, relative to the list')
    source.add_argument('--image_dir', help='folder of images (sorted by name)')
    parser.add_argument('--output_dir', required=True, help='folder for the reports (created)')
    parser.add_argument('--methods', default=','.join(evaluation.METHODS),
                        help=f'comma-separated from {",".join(evaluation.METHODS)} (default all)')
    parser.add_argument('--checkpoint_dir', help='DeepFill checkpoint folder (for --methods deepfill)')
    parser.add_argument('--families', default=None,
                        help=f'generated mask families (default {DEFAULT_FAMILIES})')
    parser.add_argument('--seed', type=int, default=0, help='seed of the generated masks')
    parser.add_argument('--mask_dir', help='mask files matched by image stem, instead of --families')
    parser.add_argument('--resolution', default='256', help='N (N x N, default 256) or "native"')
    parser.add_argument('--save_outputs', action='store_true', help='write every output image')
    parser.add_overwrite("an earlier evaluation's reports in --output_dir")
    parser.add_argument('--limit', type=int, default=None, help='only the first N images')
    parser.add_argument('--figures', action=argparse.BooleanOptionalAction, default=True,
                        help='write the PNG figures')
    parser.add_argument('--progress', action=argparse.BooleanOptionalAction, default=True,
                        help='show a progress bar')
    return parser


def _split(value):
    return [part.strip() for part in value.split(',') if part.strip()]


def main(argv=None, prog=PROG):
    """Runs the evaluation; returns the exit code (see the module docstring)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        if args.mask_dir and args.families is not None:
            raise UsageError('give either --mask_dir or --families, not both')
        if args.limit is not None and args.limit < 1:
            raise UsageError(f'--limit {args.limit}: give a positive number of images')
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
        methods = evaluation.build_methods(_split(args.methods), args.checkpoint_dir)
        result = evaluation.run_evaluation(items, args.output_dir, methods, masks, resolution=resolution,
                                           save_outputs=args.save_outputs, figures=args.figures,
                                           progress=args.progress, overwrite=args.overwrite)
    except (UsageError, InputError) as error:
        return parser.fail(error)
    print(f'{len(result.records)} results, {len(result.failures)} skipped; '
          f'report in {result.files["summary.md"]}')
    return 0 if result.ok else 1


if __name__ == '__main__':
    sys.exit(run(main))
