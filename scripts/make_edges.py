"""Writes the guided mode's edge images: `<name>_edge.jpg` beside each image of file lists or folders.

The authors trained their guided model on HED edges (holistically-nested edge detection, a neural
network whose weights cannot be fetched here). This script uses a classical detector instead:
Canny's on the image's grey version, blurred first (Gaussian, `--sigma`) so that texture and
noise do not become lines; `--low` and `--high` are Canny's hysteresis thresholds. Lines are
white (255) on black, as training's `edge_threshold` expects; each file is a grey JPEG (binary
maps come back exactly through the threshold at quality 90 and above). A model trained on these
edges expects Canny-like sketches, not HED's.

    python scripts/make_edges.py LIST_OR_FOLDER [...] [--sigma 2] [--low 30] [--high 90]
        [--quality 95] [--overwrite]

Images are read as training reads them (`inpaint.data.decode_bgr`); inputs that are themselves
edge images (`*_edge.jpg`) are left out. An existing edge image is kept (a rerun resumes), unless
`--overwrite`, and even then only one this script wrote is replaced (it marks its files with a
JPEG comment): an edge image from elsewhere, e.g. HED's, is never overwritten. A bad image is
reported and skipped; the others are still done.

Exit codes: 0 done; 1 some images failed (one `path: reason` line each on stdout); 2 bad flags or
no images.
"""
import argparse
import os
import sys

import cv2
from absl import logging
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from inpaint import files  # noqa: E402
from inpaint.data import decode_bgr  # noqa: E402
from inpaint.imageio import InputError, edge_path, is_edge_image, list_images  # noqa: E402

# The JPEG comment (COM segment) that marks a file as this script's, right after the SOI marker.
MARK = b'deepfill-tf2 scripts/make_edges.py'


def canny_edges(bgr, sigma=2.0, low=30, high=90):
    """Edge lines of a BGR uint8 image (H, W, 3): uint8 (H, W), 255 on a line, 0 elsewhere.

    Args:
        sigma: the Gaussian blur's standard deviation, in pixels (0: no blur).
        low, high: Canny's hysteresis thresholds on the gradient magnitude.
    """
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), sigma)
    return cv2.Canny(grey, low, high)


def encode_marked_jpeg(lines, quality):
    """A grey JPEG of `lines` (H, W) uint8 with this script's mark as its first segment."""
    ok, encoded = cv2.imencode('.jpg', lines, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError('cannot encode the edge image as JPEG')
    data = encoded.tobytes()
    comment = b'\xff\xfe' + (len(MARK) + 2).to_bytes(2, 'big') + MARK
    return data[:2] + comment + data[2:]


def made_here(path):
    """Whether the file at `path` carries this script's mark."""
    with open(path, 'rb') as handle:
        head = handle.read(6 + len(MARK))
    return head == b'\xff\xd8\xff\xfe' + (len(MARK) + 2).to_bytes(2, 'big') + MARK


def _parser():
    parser = argparse.ArgumentParser(
        prog='scripts/make_edges.py', description=__doc__.split('\n')[0],
        epilog='Canny on a blurred image stands in for the authors\' HED edges (see the script).')
    parser.add_argument('sources', nargs='+', metavar='LIST_OR_FOLDER',
                        help='file lists (one image path per line) or folders of images')
    parser.add_argument('--sigma', type=float, default=2.0,
                        help='Gaussian blur before Canny, in pixels (default 2; 0 = none)')
    parser.add_argument('--low', type=float, default=30, help="Canny's low threshold (default 30)")
    parser.add_argument('--high', type=float, default=90, help="Canny's high threshold (default 90)")
    parser.add_argument('--quality', type=int, default=95, help='JPEG quality, 90..100 (default 95)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace edge images this script wrote earlier (never others)')
    return parser


def main(argv=None):
    """Writes the edge images; returns the exit code (see the module docstring)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.sigma < 0 or not 0 <= args.low <= args.high:
        parser.error('need --sigma >= 0 and 0 <= --low <= --high')
    if not 90 <= args.quality <= 100:
        parser.error('--quality must be in 90..100 (lower JPEG qualities blur the lines)')
    try:
        paths = [path for source in args.sources for path in list_images(source)]
    except InputError as error:
        print(f'scripts/make_edges.py: error: {error}', file=sys.stderr)
        return 2
    images = [path for path in paths if not is_edge_image(path)]
    written, kept, failed = 0, 0, []
    for path in tqdm(images, desc='edges', unit='image'):
        target = edge_path(path)
        try:
            if os.path.exists(target) and not (args.overwrite and made_here(target)):
                if args.overwrite:
                    logging.warning('%s: not written by this script; kept', target)
                kept += 1
                continue
            lines = canny_edges(decode_bgr(path), args.sigma, args.low, args.high)
            with files.written_atomically(target) as partial:
                with open(partial, 'wb') as handle:
                    handle.write(encode_marked_jpeg(lines, args.quality))
            written += 1
        except InputError as error:  # names the file
            failed.append(str(error))
        except (OSError, cv2.error) as error:
            failed.append(f'{getattr(error, "filename", None) or path}: '
                          f'{getattr(error, "strerror", None) or error}')
    for line in failed:
        print(line)
    print(f'{written} edge images written, {kept} existing kept'
          f'{" (not made by this script, or no --overwrite)" if kept else ""}, '
          f'{len(failed)} failed, {len(paths) - len(images)} edge images among the inputs left out')
    return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
