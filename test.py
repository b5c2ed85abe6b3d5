"""Inpaint an image with DeepFill v2, with the original test.py's flags.

    python test.py --image input.png --mask mask.png --output output.png --checkpoint_dir DIR

DIR is the authors' release folder (`checkpoint` or `checkpoint.txt`), a checkpoint prefix, or a
log_dir written by train.py. By default any image size works and pixels outside the hole are kept;
`--original` reproduces the authors' test.py exactly (crop to a multiple of 8, truncating cast).
Exit codes: 0 done, 2 bad input (one line on stderr naming the file; nothing written).
"""
import argparse
import os
import sys

from absl import logging


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--image', required=True, help='image to complete (any size, gray/RGB/RGBA)')
    parser.add_argument('--mask', required=True, help='mask file of the same size, 255 = hole')
    parser.add_argument('--output', default='output.png', help='where to write the result')
    parser.add_argument('--checkpoint_dir', required=True,
                        help='release folder, checkpoint prefix or train.py log_dir')
    parser.add_argument('--original', action='store_true',
                        help="reproduce the authors' test.py: crop to a multiple of 8, float "
                             'composite cast with truncation')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from inpaint.checkpoint import CheckpointError
    from inpaint.imageio import InputError, read_image, read_mask, write_image
    from inpaint.inference import Inpainter

    try:
        if os.path.abspath(args.output) in (os.path.abspath(args.image), os.path.abspath(args.mask)):
            raise InputError(f'{args.output}: the output would overwrite an input; choose another '
                             f'--output')
        image = read_image(args.image)
        mask = read_mask(args.mask)
        if mask.shape != image.shape[:2]:
            raise InputError(f'{args.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but the image '
                             f'is {image.shape[1]}x{image.shape[0]}; give a mask of the image\'s size')
        inpainter = Inpainter.from_checkpoint(args.checkpoint_dir)
        result = inpainter.inpaint(image, mask, original=args.original)
        write_image(args.output, result)
    except (InputError, CheckpointError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    logging.info('wrote %s (%dx%d)', args.output, result.shape[1], result.shape[0])
    print(f'Inpainted {args.image} -> {args.output} ({result.shape[1]}x{result.shape[0]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
