"""Packs training photos compactly for a trip to another machine: square JPEG or WebP crops in pieces.

Each image is read as training reads it (`inpaint.data.decode_bgr`), its shorter side resized to
`--size` (INTER_AREA), centre-cropped to `--size` x `--size` and saved as JPEG or WebP at
`--quality`. Images go into `OUT/piece<k>/` folders with a `train.flist` of relative paths per
piece, so each piece can travel on its own (the GPU machine takes at most 64 MiB per call):
`--piece_mb 13,16` gives piece 0 at most 13 MB, piece 1 and the rest at most 16 MB each.
It reports what the packing costs: the PSNR of each packed image against its crop (mean, min).

    python scripts/pack_images.py OUT LIST [LIST ...] [--size 256] [--format jpg|webp]
        [--quality 90] [--piece_mb 48[,MB...]] [--shuffle_seed 0]
"""
import argparse
import os
import random
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from inpaint.data import decode_bgr, list_images  # noqa: E402
from inpaint.evaluation.metrics import psnr  # noqa: E402
from inpaint.imageio import InputError  # noqa: E402


def square_crop(image, size):
    """Shorter side to `size` (area interpolation), then the centre `size` x `size`."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    resized = cv2.resize(image, (max(size, round(width * scale)), max(size, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return resized[top:top + size, left:left + size]


# --format -> (OpenCV's quality flag, file extension)
ENCODERS = {'jpg': (cv2.IMWRITE_JPEG_QUALITY, '.jpg'), 'webp': (cv2.IMWRITE_WEBP_QUALITY, '.webp')}


def _sizes(text):
    """'13,16' -> [13.0, 16.0] (MB per piece, the last one repeating), each positive."""
    sizes = [float(item) for item in text.split(',')]
    if not sizes or min(sizes) <= 0:
        raise ValueError(text)
    return sizes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out')
    parser.add_argument('lists', nargs='+')
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--format', choices=sorted(ENCODERS), default='jpg')
    parser.add_argument('--quality', type=int, default=90, help='1..100 (JPEG or WebP quality)')
    parser.add_argument('--piece_mb', default='48', type=_sizes,
                        help='MB per piece: one number for all, or a list (the last one repeats)')
    parser.add_argument('--shuffle_seed', type=int, default=None,
                        help='mix the lists in a seeded random order, so that every piece is a sample')
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        print(f'pack_images.py: error: {args.out}: exists and is not an empty folder; give a new '
              f'folder (nothing there is replaced)', file=sys.stderr)
        return 2
    try:
        paths = [path for flist in args.lists for path in list_images(flist)]
    except InputError as error:
        print(f'pack_images.py: error: {error}', file=sys.stderr)
        return 2
    if args.shuffle_seed is not None:
        random.Random(args.shuffle_seed).shuffle(paths)
    flag, extension = ENCODERS[args.format]
    piece, piece_bytes, names, total, packed_bytes = 0, 0, [], 0, 0
    skipped, psnrs = [], []
    for path in paths:
        try:
            image = decode_bgr(path)
        except InputError as error:  # a bad item is reported and skipped; the rest are packed
            print(f'pack_images.py: skipped {error}', file=sys.stderr)
            skipped.append(path)
            continue
        crop = square_crop(image, args.size)
        data = cv2.imencode(extension, crop, [flag, args.quality])[1]
        psnrs.append(psnr(cv2.imdecode(data, cv2.IMREAD_COLOR), crop))
        if names and piece_bytes + len(data) > args.piece_mb[min(piece, len(args.piece_mb) - 1)] * 1e6:
            _finish(args.out, piece, names)
            piece, piece_bytes, names = piece + 1, 0, []
        folder = os.path.join(args.out, f'piece{piece}')
        os.makedirs(folder, exist_ok=True)
        name = f'{total:05d}{extension}'
        data.tofile(os.path.join(folder, name))
        names.append(name)
        piece_bytes += len(data)
        packed_bytes += len(data)
        total += 1
    _finish(args.out, piece, names)
    cost = f'; PSNR against the crops: mean {np.mean(psnrs):.2f} dB, min {np.min(psnrs):.2f} dB' if psnrs else ''
    print(f'{total} images in {piece + 1} pieces under {args.out} ({packed_bytes / 2**20:.1f} MiB, '
          f'{args.format} quality {args.quality}){cost}'
          + (f'; {len(skipped)} unreadable images skipped' if skipped else ''))
    return 1 if skipped else 0


def _finish(out, piece, names):
    with open(os.path.join(out, f'piece{piece}', 'train.flist'), 'w') as handle:
        handle.write(''.join(name + '\n' for name in names))


if __name__ == '__main__':
    raise SystemExit(main())
