"""The evaluation run: image lists, resolution, mask sources, and `run_evaluation`.

See `inpaint/evaluation/__init__.py` for the protocol.
"""
import dataclasses
import os
import sys
import time

import cv2
import numpy as np

from inpaint import imageio
from inpaint.evaluation.metrics import MIN_SIDE, compute_metrics
from inpaint.evaluation.baselines import BASELINES, INPAINT_RADIUS
from inpaint.evaluation.reports import (METRIC_DEFINITIONS, Record, pick_cases, summarize,
                                        write_figures, write_reports)
from inpaint.imageio import InputError

HOLE_VALUE = 255  # hole pixels of a method's input are painted white, as the original's inputs
METHODS = ('deepfill',) + tuple(BASELINES)


def build_methods(names, checkpoint_dir=None):
    """The methods to compare: {name: callable(image, mask) -> image}, in the order given.

    Args:
        names: from `METHODS`: 'deepfill' (loads `checkpoint_dir`) and the baselines.
        checkpoint_dir: the DeepFill checkpoint (needed with 'deepfill').
    Raises:
        InputError: unknown or repeated names, or no loadable checkpoint for 'deepfill'.
    """
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
            methods[name] = BASELINES[name]
    return methods


@dataclasses.dataclass(frozen=True)
class ImageItem:
    """One image to evaluate: `name` as listed (for reports), `path` resolved, `stem` for files."""
    name: str
    path: str

    @property
    def stem(self):
        return imageio.stem(self.name)


def list_items(source):
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
    image `a/b/photo.jpg` is `<family folder>/photo.png` (or another image extension); no mask of
    that stem, or several (`photo.png` and `photo.bmp`), fails that image, as in batch mode
    (`imageio.mask_by_stem`).
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
        if imageio.files_by_stem(folder):
            self._folders = {os.path.basename(os.path.normpath(os.path.abspath(folder))): folder}
        else:
            subs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
            self._folders = {d: os.path.join(folder, d) for d in subs
                             if imageio.files_by_stem(os.path.join(folder, d))}
        self._files = {family: imageio.files_by_stem(path) for family, path in self._folders.items()}
        if not self._files:
            raise InputError(f'{folder}: no mask files (PNG, 255 = hole) in it or in its sub-folders')
        self.folder = folder
        self.families = tuple(self._files)

    def describe(self):
        return {'kind': 'mask_dir', 'folder': os.path.abspath(self.folder), 'families': list(self.families)}

    def mask(self, family, index, item, original_hw, hw):
        """The bool (h, w) mask file of `item`; raises InputError if missing or of another size."""
        del index
        path = imageio.mask_by_stem(item.path, self._files[family], self._folders[family])
        mask = imageio.read_mask(path)
        if mask.shape == tuple(hw):
            return mask
        if mask.shape == tuple(original_hw):
            return cv2.resize(mask.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST) > 0
        raise InputError(f'{path}: mask is {mask.shape[1]}x{mask.shape[0]}, the image is '
                         f'{original_hw[1]}x{original_hw[0]} (evaluated at {hw[1]}x{hw[0]}); '
                         'give a mask of either size')


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


# What `run_evaluation` writes into its output folder: only these are ever replaced.
REPORT_ENTRIES = ('per_image.csv', 'summary.json', 'summary.md', 'figures', 'masks', 'outputs')


def report_folder_problem(output_dir, overwrite=False):
    """Why `output_dir` may not receive an evaluation's reports, or None: it may when it holds
    none of `REPORT_ENTRIES` (an earlier evaluation's) or with `overwrite`, which replaces those
    names only (the folder's other files are never touched)."""
    found = [name for name in REPORT_ENTRIES if os.path.lexists(os.path.join(output_dir, name))]
    if found and not overwrite:
        return (f'{output_dir}: holds an earlier evaluation ({", ".join(found)}); pass --overwrite '
                f'to replace its reports, or give another --output_dir')
    return None


def run_evaluation(images, output_dir, methods, masks, resolution=256, save_outputs=False,
                   figures=True, progress=True, overwrite=False):
    """Evaluates inpainting methods on images with masks and writes the reports.

    Args:
        images: a file list or a folder (see `list_items`), or a list of `ImageItem`.
        output_dir: folder for the reports (created).
        methods: dict name -> callable(image uint8 RGB (H, W, 3) with holes painted white,
            mask bool (H, W)) -> uint8 RGB (H, W, 3); e.g. `{'telea': telea}` or
            `{'deepfill': Inpainter.from_checkpoint(path).inpaint}`. Order is kept in the reports.
            Times exclude the first call of each method and, for a bound method of an object with
            `compilations()` (an `Inpainter`), any call that compiled (it is timed again).
        masks: `GeneratedMasks` or `MaskDir`.
        resolution: int N (N x N) or 'native'; see `resize_image`.
        save_outputs: also write every output to `outputs/<method>/<family>/<stem>.png`.
        figures: write the PNG figures (matplotlib).
        progress: show a tqdm progress bar on stderr.
        overwrite: replace an earlier evaluation's reports in `output_dir`
            (`report_folder_problem`).
    Returns:
        `EvaluationResult`; `result.ok` is False if anything was skipped.
    Raises:
        InputError: unusable inputs as a whole (missing list, no methods, an earlier evaluation
            in `output_dir` without `overwrite`, ...).
    """
    from tqdm import tqdm

    problem = report_folder_problem(output_dir, overwrite)
    if problem:
        raise InputError(problem)
    items = images if isinstance(images, (list, tuple)) else list_items(images)
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
                    output, seconds = _timed(method, masked, mask)
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


def _timed(method, image, mask):
    """(output, seconds) of one call; a call that compiled (a new input or hole shape: the
    `compilations()` of the method's object, e.g. an Inpainter, went up) is run and timed again,
    so that a time per image never includes compiling."""
    compilations = getattr(getattr(method, '__self__', None), 'compilations', None)
    for _ in range(2):
        before = compilations() if compilations else None
        start = time.perf_counter()
        output = _run_method(method, image, mask)
        seconds = time.perf_counter() - start
        if before is None or compilations() == before:
            break
    return output, seconds


def _run_method(method, image, mask):
    output = np.asarray(method(image, mask))
    if output.dtype != np.uint8 or output.shape != image.shape:
        raise ValueError(f'method returned {output.dtype} {output.shape}, expected uint8 {image.shape}')
    return output
