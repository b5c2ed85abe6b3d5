"""Evaluation: image-quality metrics, classical baselines, and the evaluation run with its reports.

The command line is `inpaint/evaluate.py`:

    python -m inpaint.evaluate --flist /work/shared/data/imagenet_sample/val.flist \
        --output_dir runs/eval --methods deepfill,telea,ns --checkpoint_dir checkpoints/places2

What is measured (the project's founding document: PSNR and SSIM on ImageNet photos, two mask
families, best and typical cases, metrics against the masked fraction):
- Every metric is computed over the WHOLE image (all pixels, all channels), output against the
  ground truth, on uint8 RGB arrays converted to float64. Known pixels are kept by every method, so
  the error comes from the holes only, but it is averaged over the full image: scores therefore
  depend on the hole fraction, which is why the reports break them down by hole-fraction bucket.
- `psnr`: 10 log10(255^2 / MSE), MSE over all pixels and channels; +inf for identical images.
- `ssim`: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  L = 255, per channel, averaged; borders as scikit-image (reflect, then a 5-pixel strip dropped).
- `l1`: mean absolute error on images scaled to [0, 1], in percent (100 * mean|a - b| / 255), as the
  DeepFill papers report "mean l1 error".
- `l2`: mean squared error on images scaled to [0, 1], in percent (100 * mean((a - b) / 255)^2), as
  the DeepFill papers report "mean l2 error".
- `seconds`: wall time of one call of the method on one image (the first call of each method is
  made twice and only the second is timed, so one-time set-up such as graph tracing is excluded).

Protocol of `run_evaluation`:
- Images come from a file list (one path per line, relative paths resolved against the list's
  folder, as the original's lists) or from a folder (its image files, sorted by name). The position
  of an image in that list is its mask index.
- Resolution: an integer N (default 256) resizes every image to N x N, as the release was trained
  (the original's loader resizes when `random_crop` is off; aspect ratio is not kept): INTER_AREA
  when shrinking, INTER_LINEAR when enlarging. `'native'` keeps each image's size (the model pads
  internally). Images must be at least 11x11 (the SSIM window).
- Masks: generated families (`'box'`, `'line_circle'` from `inpaint.masks.make_mask(family, h, w,
  seed, index)`), each saved as `<output_dir>/masks/<family>/<stem>.png` (255 = hole), or mask files
  from a folder matched by image stem (`MaskDir`). A run with `MaskDir(<output_dir>/masks)` repeats
  a generated run exactly.
- Every method receives the image with its holes painted white (255), like the original's test
  inputs, and the bool mask. It never sees the ground truth under the holes (`cv2.inpaint` does read
  pixels under the hole's edge, so this matters for the baselines).
- A bad image, a bad mask file or a method that fails on one image is reported (stderr, and the
  `failures` of the result and of summary.json) and skipped; the run goes on.

Outputs in `output_dir`: per_image.csv, summary.json, summary.md, figures/*.png, masks/ (generated
masks), outputs/<method>/<family>/<stem>.png (with `save_outputs`).
"""
import csv
import dataclasses
import json
import math
import os
import sys
import time

import cv2
import numpy as np

from inpaint import imageio
from inpaint.imageio import InputError

IMAGE_EXTENSIONS = imageio.IMAGE_EXTENSIONS
METRICS = ('psnr', 'ssim', 'l1', 'l2')
# Hole-fraction buckets [lower, upper): 0-10%, ..., 50-60%, then >=60% (reported only if used).
BUCKET_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
HOLE_VALUE = 255  # hole pixels of a method's input are painted white, as the original's inputs

# ==============================================================================================
# Metrics

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): scikit-image's truncate 3.5 gives Wang et al.'s 11 taps
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_DATA_RANGE = 255.0
MIN_SIDE = 2 * _SSIM_RADIUS + 1  # the SSIM window must fit in the image


def _pair(a, b):
    """Checks two uint8 RGB images of one shape; returns them as float64."""
    a, b = np.asarray(a), np.asarray(b)
    for array in (a, b):
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f'expected uint8 RGB (H, W, 3) images, got {array.dtype} {array.shape}')
    if a.shape != b.shape:
        raise ValueError(f'images differ in shape: {a.shape} vs {b.shape}')
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a, b):
    """Peak signal-to-noise ratio 10 log10(255^2 / MSE), MSE over all pixels and channels.

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape.
    Returns:
        float in dB; `math.inf` when the images are identical (MSE = 0), so a perfect result is
        never mistaken for a poor one; averages that include it are +inf too.
    """
    a, b = _pair(a, b)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return math.inf
    return float(10.0 * np.log10(_DATA_RANGE ** 2 / mse))


def ssim(a, b):
    """Structural similarity (Wang et al. 2004), mean over pixels and channels.

    11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, population covariances.
    Each channel is filtered with reflected borders ('reflect' = OpenCV's BORDER_REFLECT) and the
    5-pixel strip along the borders is left out of the mean, so the value equals
    `skimage.metrics.structural_similarity(a, b, channel_axis=2, data_range=255,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)` (to ~1e-12).

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape, each side at least 11.
    Returns:
        float, 1.0 for identical images.
    Raises:
        ValueError: wrong types or shapes, or an image smaller than the window.
    """
    a, b = _pair(a, b)
    if min(a.shape[:2]) < MIN_SIDE:
        raise ValueError(f'SSIM needs images of at least {MIN_SIDE}x{MIN_SIDE}, got {a.shape[:2]}')
    kernel = cv2.getGaussianKernel(MIN_SIDE, _SSIM_SIGMA, cv2.CV_64F)

    def blur(x):  # (H, W, 3) float64, each channel separately
        return cv2.sepFilter2D(x, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)

    c1 = (_SSIM_K1 * _DATA_RANGE) ** 2
    c2 = (_SSIM_K2 * _DATA_RANGE) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    r = _SSIM_RADIUS
    return float(s[r:-r, r:-r].mean())


def l1_error(a, b):
    """Mean l1 error as the DeepFill papers report it: 100 * mean|a - b| / 255.

    Mean absolute error over all pixels and channels of images scaled to [0, 1], in percent.

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape.
    Returns:
        float in [0, 100].
    """
    a, b = _pair(a, b)
    return float(100.0 * np.mean(np.abs(a - b)) / _DATA_RANGE)


def l2_error(a, b):
    """Mean l2 error as the DeepFill papers report it: 100 * mean(((a - b) / 255)^2).

    Mean squared error over all pixels and channels of images scaled to [0, 1], in percent.

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape.
    Returns:
        float in [0, 100].
    """
    a, b = _pair(a, b)
    return float(100.0 * np.mean(((a - b) / _DATA_RANGE) ** 2))


def compute_metrics(output, truth):
    """All metrics of `METRICS` for one output against its ground truth, as a dict of floats."""
    return {'psnr': psnr(output, truth), 'ssim': ssim(output, truth),
            'l1': l1_error(output, truth), 'l2': l2_error(output, truth)}


# ==============================================================================================
# Baselines: OpenCV's classical inpainting, with the model's call signature.

INPAINT_RADIUS = 3  # cv2.inpaint's neighbourhood radius in pixels (OpenCV's documented example)


def _cv2_inpaint(image, mask, flags):
    image = np.asarray(image)
    mask = np.asarray(mask, bool)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected a uint8 RGB (H, W, 3) image, got {image.dtype} {image.shape}')
    if mask.shape != image.shape[:2]:
        raise ValueError(f'mask shape {mask.shape} does not match image {image.shape[:2]}')
    filled = cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8) * 255, INPAINT_RADIUS, flags)
    # Known pixels are kept explicitly, as the model's output composition does.
    return np.where(mask[:, :, None], filled, image)


def telea(image, mask):
    """Fills holes with Telea's fast-marching method (`cv2.INPAINT_TELEA`, radius 3).

    Each channel is filled with the same geometric weights, so RGB and BGR give the same result.

    Args:
        image: uint8 RGB (H, W, 3). OpenCV reads some pixels under the hole's edge, so give the
            masked input (as `run_evaluation` does), not the ground truth.
        mask: bool (H, W), True = hole.
    Returns:
        uint8 RGB (H, W, 3); pixels outside the mask are the input's.
    """
    return _cv2_inpaint(image, mask, cv2.INPAINT_TELEA)


def navier_stokes(image, mask):
    """Fills holes with the Navier-Stokes based method (`cv2.INPAINT_NS`, radius 3).

    Args and returns as `telea`.
    """
    return _cv2_inpaint(image, mask, cv2.INPAINT_NS)


BASELINES = {'telea': telea, 'ns': navier_stokes}


# ==============================================================================================
# Inputs: image lists, resolution, mask sources.


@dataclasses.dataclass(frozen=True)
class ImageItem:
    """One image to evaluate: `name` as listed (for reports), `path` resolved, `stem` for files."""
    name: str
    path: str

    @property
    def stem(self):
        return os.path.splitext(os.path.basename(self.name))[0]


def list_images(source):
    """The images of a file list or of a folder, in order (the order gives the mask index).

    Args:
        source: a file list or a folder, with the rules of `imageio.list_images`.
    Returns:
        list of `ImageItem`, named relative to the list's folder (or the folder).
    Raises:
        InputError: missing or empty source, or two images with the same stem (their mask and
            output files would collide).
    """
    paths = imageio.list_images(source)
    base = source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))
    items = [ImageItem(os.path.relpath(path, base), path) for path in paths]
    seen = {}
    for item in items:
        if item.stem in seen:
            raise InputError(f'{source}: {seen[item.stem]!r} and {item.name!r} have the same stem '
                             f'{item.stem!r}; file names must differ without their extension')
        seen[item.stem] = item.name
    return items


def parse_resolution(value):
    """`'native'` or a side length >= 11 (int or digits); returns `'native'` or an int."""
    if isinstance(value, str) and value.strip().lower() == 'native':
        return 'native'
    try:
        side = int(value)
    except (TypeError, ValueError):
        side = None
    if side is None or side < MIN_SIDE or str(value).strip() != str(side):
        raise InputError(f'resolution {value!r} is not valid; give "native" or an integer >= {MIN_SIDE}')
    return side


def resize_image(image, resolution):
    """Applies the resolution policy to an RGB uint8 image.

    Args:
        image: uint8 (H, W, 3).
        resolution: `'native'` (unchanged) or N (N x N: INTER_AREA when shrinking both sides, which
            averages without aliasing; INTER_LINEAR otherwise).
    Returns:
        uint8 (N, N, 3), or the image itself.
    """
    if resolution == 'native':
        return image
    h, w = image.shape[:2]
    if (h, w) == (resolution, resolution):
        return image
    shrink = resolution <= h and resolution <= w
    return cv2.resize(image, (resolution, resolution),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class GeneratedMasks:
    """Masks generated per family from (seed, image index); saved under `<output_dir>/masks/`.

    Args:
        families: names, e.g. ('box', 'line_circle').
        seed: int.
        make_mask: `f(family, h, w, seed, index) -> bool (h, w)`; by default
            `inpaint.masks.make_mask`, whose `FAMILIES` then validates `families`.
    """
    saves_masks = True

    def __init__(self, families, seed=0, make_mask=None):
        families = tuple(families)
        if make_mask is None:
            from inpaint import masks  # imported here: only generated runs need it
            unknown = [f for f in families if f not in masks.FAMILIES]
            if unknown:
                raise InputError(f'unknown mask families {unknown}; choose from {sorted(masks.FAMILIES)}')
            make_mask = masks.make_mask
        if not families or len(set(families)) != len(families):
            raise InputError(f'mask families {list(families)}: give at least one, without repeats')
        self.families = families
        self.seed = int(seed)
        self._make_mask = make_mask

    def describe(self):
        return {'kind': 'generated', 'families': list(self.families), 'seed': self.seed}

    def mask(self, family, index, item, original_hw, hw):
        """The bool (h, w) mask of image number `index` (`item`, `original_hw` unused)."""
        del item, original_hw
        mask = np.asarray(self._make_mask(family, hw[0], hw[1], self.seed, index))
        if mask.shape != tuple(hw):
            raise ValueError(f'make_mask({family!r}) returned shape {mask.shape}, expected {tuple(hw)}')
        return mask.astype(bool)


class MaskDir:
    """Mask files matched to images by stem (255 = hole, as `imageio.read_mask`).

    Layout: either mask files directly in `folder` (one family, named after the folder), or one
    sub-folder of mask files per family (as `<output_dir>/masks/` of a generated run). The mask of
    image `a/b/photo.jpg` is `<family folder>/photo.png` (any other extension if no .png exists).
    A mask of the evaluated size is used as is; a mask of the image's original size goes through
    the same resize (nearest neighbour); another size fails that image.

    Args:
        folder: path.
    Raises:
        InputError: missing folder, or no mask files in either layout.
    """
    saves_masks = False

    def __init__(self, folder):
        if not os.path.isdir(folder):
            raise InputError(f'{folder}: mask folder not found; check --mask_dir')

        def stems(path):  # {stem: file}; a .png wins when several files share a stem
            files = {}
            for n in sorted(os.listdir(path)):
                stem, ext = os.path.splitext(n)
                if ext.lower() in IMAGE_EXTENSIONS and (stem not in files or ext.lower() == '.png'):
                    files[stem] = os.path.join(path, n)
            return files

        if stems(folder):
            self._folders = {os.path.basename(os.path.normpath(os.path.abspath(folder))): folder}
        else:
            subs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
            self._folders = {d: os.path.join(folder, d) for d in subs if stems(os.path.join(folder, d))}
        self._files = {family: stems(path) for family, path in self._folders.items()}
        if not self._files:
            raise InputError(f'{folder}: no mask files (PNG, 255 = hole) in it or in its sub-folders')
        self.folder = folder
        self.families = tuple(self._files)

    def describe(self):
        return {'kind': 'mask_dir', 'folder': os.path.abspath(self.folder), 'families': list(self.families)}

    def mask(self, family, index, item, original_hw, hw):
        """The bool (h, w) mask file of `item`; raises InputError if missing or of another size."""
        del index
        path = self._files[family].get(item.stem)
        if path is None:
            raise InputError(f'{self._folders[family]}: no mask {item.stem}.png for {item.name}')
        mask = imageio.read_mask(path)
        if mask.shape == tuple(hw):
            return mask
        if mask.shape == tuple(original_hw):
            return cv2.resize(mask.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST) > 0
        raise InputError(f'{path}: mask is {mask.shape[1]}x{mask.shape[0]}, the image is '
                         f'{original_hw[1]}x{original_hw[0]} (evaluated at {hw[1]}x{hw[0]}); '
                         'give a mask of either size')


# ==============================================================================================
# The evaluation run.


@dataclasses.dataclass
class Record:
    """One row of per_image.csv: a method's result on one image with one family's mask."""
    method: str
    family: str
    image: str
    hole_fraction: float
    psnr: float
    ssim: float
    l1: float
    l2: float
    seconds: float


CSV_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


@dataclasses.dataclass
class Failure:
    """An image (and family / method, when known) that was skipped, with the reason."""
    image: str
    family: str
    method: str
    error: str


@dataclasses.dataclass
class EvaluationResult:
    """What `run_evaluation` returns: the rows, the skipped cases, the summary and the files."""
    records: list
    failures: list
    summary: dict
    files: dict

    @property
    def ok(self):
        return not self.failures


def run_evaluation(images, output_dir, methods, masks, resolution=256, save_outputs=False,
                   figures=True, progress=True):
    """Evaluates inpainting methods on images with masks and writes the reports.

    Args:
        images: a file list or a folder (see `list_images`), or a list of `ImageItem`.
        output_dir: folder for the reports (created).
        methods: dict name -> callable(image uint8 RGB (H, W, 3) with holes painted white,
            mask bool (H, W)) -> uint8 RGB (H, W, 3); e.g. `{'telea': telea}` or
            `{'deepfill': Inpainter.from_checkpoint(path).inpaint}`. Order is kept in the reports.
        masks: `GeneratedMasks` or `MaskDir`.
        resolution: int N (N x N) or 'native'; see `resize_image`.
        save_outputs: also write every output to `outputs/<method>/<family>/<stem>.png`.
        figures: write the PNG figures (matplotlib).
        progress: show a tqdm progress bar on stderr.
    Returns:
        `EvaluationResult`; `result.ok` is False if anything was skipped.
    Raises:
        InputError: unusable inputs as a whole (missing list, no methods, ...).
    """
    from tqdm import tqdm

    items = images if isinstance(images, (list, tuple)) else list_images(images)
    if not methods:
        raise InputError('no methods to evaluate; give at least one')
    resolution = parse_resolution(resolution)
    os.makedirs(output_dir, exist_ok=True)
    records, failures = [], []
    warmed = set()
    bar = tqdm(total=len(items) * len(masks.families), desc='evaluate', unit='case',
               disable=not progress, file=sys.stderr)

    def fail(item, family, method, error):
        failure = Failure(item.name, family or '', method or '', f'{type(error).__name__}: {error}')
        failures.append(failure)
        where = ' '.join(p for p in (failure.image, failure.family, failure.method) if p)
        bar.write(f'skipped {where}: {failure.error}', file=sys.stderr)

    for index, item in enumerate(items):
        try:
            truth, original_hw = _load(item, resolution)
        except (InputError, ValueError) as error:
            fail(item, None, None, error)
            bar.update(len(masks.families))
            continue
        for family in masks.families:
            bar.update(1)
            try:
                mask = masks.mask(family, index, item, original_hw, truth.shape[:2])
            except (InputError, ValueError) as error:
                fail(item, family, None, error)
                continue
            if masks.saves_masks:
                imageio.write_mask(os.path.join(output_dir, 'masks', family, item.stem + '.png'), mask)
            masked = _masked_input(truth, mask)
            fraction = float(mask.mean())
            for name, method in methods.items():
                try:
                    if name not in warmed:  # the first call pays one-time set-up; time the second
                        _run_method(method, masked, mask)
                        warmed.add(name)
                    start = time.perf_counter()
                    output = _run_method(method, masked, mask)
                    seconds = time.perf_counter() - start
                except Exception as error:  # noqa: BLE001 -- reported and counted as a failure
                    fail(item, family, name, error)
                    continue
                records.append(Record(name, family, item.name, fraction, seconds=seconds,
                                      **compute_metrics(output, truth)))
                if save_outputs:
                    imageio.write_image(os.path.join(output_dir, 'outputs', name, family,
                                                     item.stem + '.png'), output)
    bar.close()

    settings = {
        'images': len(items), 'resolution': resolution, 'masks': masks.describe(),
        'methods': list(methods), 'inpaint_radius_baselines': INPAINT_RADIUS,
        'method_input': f'image with holes painted {HOLE_VALUE}, and the bool mask',
        'metrics_over': 'whole image, all channels (uint8 RGB as float64)',
    }
    summary = summarize(records, list(methods), list(masks.families))
    summary = {'settings': settings, 'metric_definitions': METRIC_DEFINITIONS, **summary,
               'failures': [dataclasses.asdict(f) for f in failures]}
    files = write_reports(output_dir, records, summary)
    if figures:
        cases = {}
        by_name = {item.name: (index, item) for index, item in enumerate(items)}
        for (method, family), chosen in pick_cases(records).items():
            rows = []
            for label, record in chosen:
                index, item = by_name[record.image]
                truth, original_hw = _load(item, resolution)
                mask = masks.mask(family, index, item, original_hw, truth.shape[:2])
                masked = _masked_input(truth, mask)
                rows.append((label, record, masked, mask, _run_method(methods[method], masked, mask), truth))
            cases[(method, family)] = rows
        files.update(write_figures(output_dir, records, cases, list(methods), list(masks.families)))
    return EvaluationResult(records, failures, summary, files)


def _load(item, resolution):
    """Reads and resizes one image; returns (uint8 RGB, original (h, w))."""
    image = imageio.read_image(item.path)
    resized = resize_image(image, resolution)
    if min(resized.shape[:2]) < MIN_SIDE:
        raise InputError(f'{item.path}: image is {resized.shape[1]}x{resized.shape[0]}; '
                         f'the metrics need at least {MIN_SIDE}x{MIN_SIDE}')
    return resized, image.shape[:2]


def _masked_input(image, mask):
    masked = image.copy()
    masked[mask] = HOLE_VALUE
    return masked


def _run_method(method, image, mask):
    output = np.asarray(method(image, mask))
    if output.dtype != np.uint8 or output.shape != image.shape:
        raise ValueError(f'method returned {output.dtype} {output.shape}, expected uint8 {image.shape}')
    return output


# ==============================================================================================
# Reports.

METRIC_DEFINITIONS = {
    'psnr': 'dB, 10*log10(255^2/MSE), MSE over all pixels and channels of the whole image; inf if identical',
    'ssim': 'Wang et al. 2004, Gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, L 255, mean over channels',
    'l1': 'percent, 100*mean|out-gt| with images scaled to [0,1], whole image',
    'l2': 'percent, 100*mean((out-gt)^2) with images scaled to [0,1], whole image',
    'hole_fraction': 'fraction of hole pixels in the mask',
    'seconds': 'wall time of one method call on one image (first call per method excluded)',
    'std': 'population standard deviation (ddof 0)',
}
_STAT_FIELDS = METRICS + ('hole_fraction', 'seconds')


def _stats(values):
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return {'mean': None, 'std': None}
    if not np.all(np.isfinite(values)):  # inf PSNR: the mean is inf, the spread undefined
        return {'mean': float(np.mean(values)), 'std': None}
    return {'mean': float(np.mean(values)), 'std': float(np.std(values))}


def bucket_label(lower, upper):
    return f'>={lower:.0%}' if upper is None else f'{lower * 100:.0f}-{upper * 100:.0f}%'


def buckets(records, with_top=None):
    """Hole-fraction buckets [lower, upper) 0-10%, ..., 50-60% always, >=60% only if used.

    Args:
        records: `Record`s.
        with_top: include the >=60% bucket; by default only if one of `records` falls in it.
    Returns:
        list of (label, lower, upper or None, records in it).
    """
    edges = BUCKET_EDGES
    out = [(bucket_label(lo, hi), lo, hi, [r for r in records if lo <= r.hole_fraction < hi])
           for lo, hi in zip(edges[:-1], edges[1:])]
    top = [r for r in records if r.hole_fraction >= edges[-1]]
    if top or with_top:
        out.append((bucket_label(edges[-1], None), edges[-1], None, top))
    return out


def summarize(records, methods, families):
    """Per method x family: n, mean and std of every metric, overall and per hole-fraction bucket.

    Returns:
        {'results': {method: {family: {'n', <metric>: {'mean', 'std'}, ..., 'buckets': [...]}}}}
    """
    results = {}
    for method in methods:
        results[method] = {}
        for family in families:
            # The same bucket list for every method of a family, even if one skipped the >=60% image.
            with_top = any(r.family == family and r.hole_fraction >= BUCKET_EDGES[-1] for r in records)
            rows = [r for r in records if r.method == method and r.family == family]
            entry = {'n': len(rows), **{k: _stats([getattr(r, k) for r in rows]) for k in _STAT_FIELDS}}
            entry['buckets'] = [
                {'bucket': label, 'lower': lo, 'upper': hi, 'n': len(part),
                 **{k: _stats([getattr(r, k) for r in part]) for k in METRICS}}
                for label, lo, hi, part in buckets(rows, with_top)]
            results[method][family] = entry
    return {'results': results}


def _json_safe(value):
    """Strict JSON: non-finite floats become the strings 'inf', '-inf', 'nan'."""
    if isinstance(value, float) and not math.isfinite(value):
        return 'nan' if math.isnan(value) else ('inf' if value > 0 else '-inf')
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_reports(output_dir, records, summary):
    """Writes per_image.csv, summary.json and summary.md; returns {name: path}."""
    files = {name: os.path.join(output_dir, name) for name in ('per_image.csv', 'summary.json', 'summary.md')}
    with open(files['per_image.csv'], 'w', newline='', encoding='utf-8') as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for r in records:
            writer.writerow([r.method, r.family, r.image] +
                            [repr(float(getattr(r, k))) for k in CSV_FIELDS[3:]])
    with open(files['summary.json'], 'w', encoding='utf-8') as handle:
        json.dump(_json_safe(summary), handle, indent=2, allow_nan=False)
        handle.write('\n')
    with open(files['summary.md'], 'w', encoding='utf-8') as handle:
        handle.write(summary_markdown(summary))
    return files


def _fmt(stat, digits):
    if stat['mean'] is None:
        return '-'
    mean = f'{stat["mean"]:.{digits}f}'
    return mean if stat['std'] is None else f'{mean} ± {stat["std"]:.{digits}f}'


def summary_markdown(summary):
    """The Markdown report: settings, one table per family, then per hole-fraction bucket."""
    s = summary['settings']
    lines = ['# Inpainting evaluation', '',
             f'{s["images"]} images, resolution {s["resolution"]}, masks: {json.dumps(s["masks"])}.',
             f'Methods receive the {s["method_input"]}. Metrics over the {s["metrics_over"]}; '
             'values are mean ± std (population).', '',
             '- PSNR (dB): 10 log10(255² / MSE), MSE over all pixels and channels.',
             '- SSIM: Wang et al. 2004, Gaussian 11x11 σ 1.5, K1 0.01, K2 0.03, L 255.',
             '- L1 (%): 100 · mean |output − truth| on images scaled to [0, 1].',
             '- L2 (%): 100 · mean (output − truth)² on images scaled to [0, 1].',
             '- s/image: wall time of one method call (first call of each method not timed).', '']
    results = summary['results']
    families = list(next(iter(results.values()))) if results else []
    for family in families:
        lines += [f'## {family}', '',
                  '| method | n | holes (%) | PSNR (dB) | SSIM | L1 (%) | L2 (%) | s/image |',
                  '|---|---|---|---|---|---|---|---|']
        for method, per_family in results.items():
            e = per_family[family]
            holes = e['hole_fraction']
            holes = {k: (None if v is None else 100 * v) for k, v in holes.items()}
            lines.append(f'| {method} | {e["n"]} | {_fmt(holes, 1)} | {_fmt(e["psnr"], 2)} | '
                         f'{_fmt(e["ssim"], 4)} | {_fmt(e["l1"], 2)} | {_fmt(e["l2"], 3)} | '
                         f'{_fmt(e["seconds"], 4)} |')
        lines += ['', f'### {family}: by hole fraction', '',
                  '| holes | method | n | PSNR (dB) | SSIM | L1 (%) | L2 (%) |', '|---|---|---|---|---|---|---|']
        per_method = [(method, per_family[family]['buckets']) for method, per_family in results.items()]
        for position in range(len(per_method[0][1])):  # the same buckets for every method
            for method, method_buckets in per_method:
                b = method_buckets[position]
                lines.append(f'| {b["bucket"]} | {method} | {b["n"]} | {_fmt(b["psnr"], 2)} | '
                             f'{_fmt(b["ssim"], 4)} | {_fmt(b["l1"], 2)} | {_fmt(b["l2"], 3)} |')
        lines.append('')
    failures = summary.get('failures', [])
    lines += [f'## Skipped ({len(failures)})', '']
    lines += [f'- {" ".join(p for p in (f["image"], f["family"], f["method"]) if p)}: {f["error"]}'
              for f in failures]
    return '\n'.join(lines).rstrip('\n') + '\n'


def pick_cases(records):
    """Best, median and worst record by PSNR for each (method, family) that has records.

    Returns:
        {(method, family): [('best', r), ('median', r), ('worst', r)]}, fewer if n < 3 (no repeats).
    """
    groups = {}
    for r in records:
        groups.setdefault((r.method, r.family), []).append(r)
    picks = {}
    for key, rows in groups.items():
        ranked = sorted(rows, key=lambda r: r.psnr, reverse=True)  # stable: ties keep list order
        chosen, seen = [], set()
        for label, position in (('best', 0), ('median', (len(ranked) - 1) // 2), ('worst', len(ranked) - 1)):
            if position not in seen:
                seen.add(position)
                chosen.append((label, ranked[position]))
        picks[key] = chosen
    return picks


def write_figures(output_dir, records, cases, methods, families):
    """Case figures (Original | Mask | Output | Ground truth) and PSNR/SSIM-vs-holes scatters.

    Args:
        cases: {(method, family): [(label, record, masked, mask, output, truth)]}.
    Returns:
        {file name: path}.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    folder = os.path.join(output_dir, 'figures')
    os.makedirs(folder, exist_ok=True)
    files = {}
    titles = ('Original (input)', 'Mask', 'Output', 'Ground truth')
    for (method, family), rows in cases.items():
        fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3.3 * len(rows)), squeeze=False)
        for axis_row, (label, record, masked, mask, output, truth) in zip(axes, rows):
            panels = (masked, mask.astype(np.float32), output, truth)
            for ax, title, panel in zip(axis_row, titles, panels):
                if panel.ndim == 2:  # the mask: white = hole
                    ax.imshow(panel, cmap='gray', vmin=0, vmax=1, interpolation='nearest')
                else:
                    ax.imshow(panel, interpolation='nearest')
                ax.set_title(title, fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
            axis_row[0].set_ylabel(label, fontsize=11)
            axis_row[0].set_xlabel(os.path.basename(record.image), fontsize=8)
            axis_row[2].set_xlabel(f'PSNR {record.psnr:.2f} dB   SSIM {record.ssim:.4f}   '
                                   f'holes {record.hole_fraction:.1%}', fontsize=9)
        fig.suptitle(f'{method} on {family} masks: best, median and worst by PSNR', fontsize=11)
        fig.tight_layout()
        name = f'cases_{method}_{family}.png'
        files[name] = os.path.join(folder, name)
        fig.savefig(files[name], dpi=80)
        plt.close(fig)
    for family in families:
        fig, (ax_psnr, ax_ssim) = plt.subplots(1, 2, figsize=(11, 4.2))
        for method in methods:
            rows = [r for r in records if r.method == method and r.family == family]
            finite = [r for r in rows if math.isfinite(r.psnr)]
            ax_psnr.scatter([100 * r.hole_fraction for r in finite], [r.psnr for r in finite], s=10,
                            alpha=0.7, label=method)
            ax_ssim.scatter([100 * r.hole_fraction for r in rows], [r.ssim for r in rows], s=10,
                            alpha=0.7, label=method)
        for ax, metric in ((ax_psnr, 'PSNR (dB, whole image)'), (ax_ssim, 'SSIM (whole image)')):
            ax.set_xlabel('hole fraction (%)')
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f'{family} masks: metrics vs hole fraction')
        fig.tight_layout()
        name = f'scatter_{family}.png'
        files[name] = os.path.join(folder, name)
        fig.savefig(files[name], dpi=80)
        plt.close(fig)
    return files
