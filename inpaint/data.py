"""Training input pipeline: file lists and folders -> tf.data batches of BGR float32 images.

Conventions follow the original (neuralgym's `DataFromFNames`): images are decoded as
`cv2.imread` does (BGR, gray repeated to three channels, alpha dropped, EXIF orientation
applied), values stay 0..255 (the model does `x / 127.5 - 1`), and `random_crop` either crops
`img_shape` at random or resizes the whole image to it.

Differences from the original, on purpose:
- An image smaller than the crop is upscaled keeping its aspect ratio. (neuralgym passes
  `(h, w)` where `cv2.resize` expects `(w, h)`, which transposes the aspect ratio; harmless
  only for square crops of square-ish images.) Resizing in `random_crop=False` mode likewise
  uses `(W, H)` correctly.
- Unreadable files are skipped with a warning and counted (`DecodeStats`), instead of retrying
  forever; a full pass that yields no image raises `InputError` rather than spinning.
- Crop offsets come from a per-element seed (base seed, element index), so a seeded pipeline
  gives the same batches on every run even with parallel decoding.
- 16-bit files are scaled to 8 bits as `imageio.read_image` does (`/ 257`, rounded), so
  training and inference see the same pixels; `cv2.imread` would truncate `>> 8`.
"""
import math
import os
import threading

import cv2
import numpy as np
import tensorflow as tf
from absl import logging

from inpaint import imageio
from inpaint.imageio import IMAGE_EXTENSIONS, InputError, list_images, read_flist  # noqa: F401 (re-exported)


# What an unreadable file raises: imageio's one-line errors, OS errors (permissions, I/O) and
# OpenCV decoder errors. Anything else is a bug and is not swallowed.
_DECODE_ERRORS = (InputError, OSError, cv2.error)


def decode_bgr(path):
    """Reads an image as `cv2.imread(path)` does: BGR uint8 (H, W, 3), EXIF orientation applied.

    Gray files are repeated to three channels, an alpha channel is dropped and 16-bit files are
    scaled to 8 bits the way `imageio.read_image` does.

    Raises:
        InputError: missing, empty or undecodable file, or an unsupported pixel type.
    """
    # IMREAD_COLOR (not imageio's IMREAD_UNCHANGED) so that JPEG EXIF orientation is applied as
    # in cv2.imread; ANYDEPTH keeps 16 bits for imageio's scaling.
    array = imageio._read(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)  # pylint: disable=protected-access
    if array.dtype != np.uint8:
        array = np.ascontiguousarray(imageio.to_rgb_uint8(array, path)[:, :, ::-1])
    return array


def crop_or_resize(image, img_shape, random_crop, rng=None):
    """Brings an image to `img_shape` the way training does.

    `random_crop=True`: an image smaller than `img_shape` on either side is first upscaled
    (bilinear, `cv2.INTER_LINEAR`, keeping its aspect ratio) so that it covers the shape; then a
    crop of `img_shape` is taken at a random offset (`rng`) or at the centre (`rng=None`).
    `random_crop=False`: the whole image is resized to `img_shape` with `cv2.INTER_LINEAR`, as the
    original does (its resize mode, used for CelebA-HQ).

    Args:
        image: uint8 (h, w, 3) array, any channel order (it is kept).
        img_shape: (H, W) or (H, W, 3).
        random_crop: crop (True) or resize (False).
        rng: `np.random.Generator` for the crop offsets; None = centre crop.
    Returns:
        uint8 (H, W, 3) array, contiguous.
    """
    height, width = _check_shape(img_shape)
    if not random_crop:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    imgh, imgw = image.shape[:2]
    if imgh < height or imgw < width:
        scale = max(height / imgh, width / imgw)
        # The small epsilon keeps e.g. 100 * 2.56 = 256.00000000000003 from rounding up to 257.
        new_h = max(height, math.ceil(imgh * scale - 1e-6))
        new_w = max(width, math.ceil(imgw * scale - 1e-6))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        imgh, imgw = new_h, new_w
    if rng is None:
        top, left = (imgh - height) // 2, (imgw - width) // 2
    else:
        top = int(rng.integers(0, imgh - height + 1))  # height first, as the original draws them
        left = int(rng.integers(0, imgw - width + 1))
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def center_crop_or_resize(image, img_shape, random_crop):
    """Deterministic counterpart of training's crop for validation and static views.

    Same as `crop_or_resize` with a centre crop (when `random_crop`) or the same resize.
    """
    return crop_or_resize(image, img_shape, random_crop, rng=None)


class DecodeStats:
    """Counts decoded and skipped files of one pipeline; safe to read from any thread.

    Attributes (read-only properties):
        decoded: images decoded so far.
        skipped: skip events so far (a bad file counts once per pass that meets it).
        bad_files: set of distinct paths that could not be read.
    """

    def __init__(self, num_files):
        self._num_files = num_files
        self._lock = threading.Lock()
        self._decoded = 0
        self._skipped = 0
        self._bad_files = set()
        self._passes = {}  # pass number -> [attempts, successes]; finished passes are removed

    @property
    def decoded(self):
        with self._lock:
            return self._decoded

    @property
    def skipped(self):
        with self._lock:
            return self._skipped

    @property
    def bad_files(self):
        with self._lock:
            return set(self._bad_files)

    def __repr__(self):
        return f'DecodeStats(decoded={self.decoded}, skipped={self.skipped})'

    def record(self, index, path, error=None):
        """Records the outcome of element `index` (error None = decoded).

        Warns once per bad file. Raises InputError when a full pass over the file list (the
        elements `k * num_files ... (k + 1) * num_files - 1`, in any completion order) has
        finished without one image, so that a pipeline over unreadable files stops instead
        of filtering forever.
        """
        with self._lock:
            if error is None:
                self._decoded += 1
            else:
                self._skipped += 1
                first_time = path not in self._bad_files
                self._bad_files.add(path)
            counts = self._passes.setdefault(index // self._num_files, [0, 0])
            counts[0] += 1
            counts[1] += error is None
            finished = counts[0] >= self._num_files
            if finished:
                del self._passes[index // self._num_files]
        if error is not None and first_time:
            logging.warning('Skipping an unreadable training image: %s', error)
        if finished and counts[1] == 0:
            raise InputError(f'no image could be read in a full pass over {self._num_files} '
                             f'files (last: {error}); check the file list')


def make_dataset(paths, img_shape, random_crop, batch_size, shuffle=True, seed=None, repeat=True,
                 num_parallel_calls=tf.data.AUTOTUNE, shuffle_buffer=1000):
    """Builds the training pipeline.

    File names are shuffled (a buffer of `shuffle_buffer` names, reshuffled every pass), then
    decoded in parallel with OpenCV (`decode_bgr`), cropped or resized (`crop_or_resize`) and
    batched. Map order is deterministic; crop offsets come from `(seed, element index)`, so two
    pipelines with the same seed give identical batches. Unreadable files are skipped with one
    warning each and counted in `dataset.decode_stats` (a `DecodeStats`, attached to the returned
    object only: keep a reference before chaining more transformations).

    Args:
        paths: image paths (e.g. from `list_images`).
        img_shape: (H, W) or (H, W, 3) of the output images.
        random_crop: random crops of `img_shape` (True) or resize to it (False).
        batch_size: images per batch; the last incomplete batch is dropped.
        shuffle: shuffle file names each pass.
        seed: int >= 0 for reproducible order and crops; None = fresh randomness.
        repeat: cycle forever (True) or stop after one pass (False).
        num_parallel_calls: parallel decoders (default `tf.data.AUTOTUNE`).
        shuffle_buffer: shuffle buffer size, in file names (cheap: names, not pixels).
    Returns:
        `tf.data.Dataset` of float32 (batch_size, H, W, 3) BGR batches, values 0..255, with a
        `decode_stats` attribute.
    Raises:
        InputError: no paths, or none of them can be read (checked before building, reading
            files in order until one decodes). If files become unreadable later, iterating
            raises `tf.errors.InvalidArgumentError` carrying the InputError message after a
            full pass without an image.
        ValueError: bad `img_shape`, `batch_size`, `seed` or `shuffle_buffer`.
    """
    paths = [os.fspath(path) for path in paths]
    height, width = _check_shape(img_shape)
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    if seed is not None and (int(seed) != seed or seed < 0):
        raise ValueError(f'seed must be a non-negative integer or None, got {seed!r}')
    if int(shuffle_buffer) != shuffle_buffer or shuffle_buffer < 1:
        raise ValueError(f'shuffle_buffer must be a positive integer, got {shuffle_buffer!r}')
    if not paths:
        raise InputError('no image paths given; give a non-empty file list or folder')
    _check_some_readable(paths)

    num_files = len(paths)
    stats = DecodeStats(num_files)
    # Crop offsets need a seed of their own even when unseeded, so that they stay per element.
    base_seed = int(seed) if seed is not None else np.random.SeedSequence().entropy

    def load(path, index):
        path = os.fsdecode(path)
        index = int(index)
        try:
            image, failure = decode_bgr(path), None
        except _DECODE_ERRORS as error:
            image, failure = None, error
        if failure is not None:  # recorded outside `except`, so a raise here is not chained
            stats.record(index, path, failure)  # raises after a full pass with nothing decoded
            return np.zeros((height, width, 3), np.uint8), False
        rng = np.random.default_rng([base_seed, index]) if random_crop else None
        image = crop_or_resize(image, (height, width), random_crop, rng)
        stats.record(index, path)
        return image, True

    def load_op(index, path):
        image, ok = tf.numpy_function(load, [path, index], [tf.uint8, tf.bool], stateful=True)
        image.set_shape((height, width, 3))
        ok.set_shape(())
        return image, ok

    # Names as bytes: tf.string holds any file-system name, including non-UTF-8 ones.
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant([os.fsencode(p) for p in paths]))
    if shuffle:
        dataset = dataset.shuffle(int(shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.enumerate()  # global element index: pass = index // num_files
    dataset = dataset.map(load_op, num_parallel_calls=num_parallel_calls, deterministic=True)
    dataset = dataset.filter(lambda image, ok: ok)
    dataset = dataset.map(lambda image, ok: image)
    dataset = dataset.batch(int(batch_size), drop_remainder=True)
    dataset = dataset.map(lambda batch: tf.cast(batch, tf.float32))
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.decode_stats = stats
    return dataset


def _check_some_readable(paths):
    """Raises InputError unless one of `paths` decodes; stops at the first that does."""
    first_error = None
    for path in paths:
        try:
            decode_bgr(path)
            return
        except _DECODE_ERRORS as error:
            first_error = first_error or error
    raise InputError(f'none of the {len(paths)} listed images can be read (first: {first_error}); '
                     'check the file list and its paths')


def _check_shape(img_shape):
    """Returns (H, W) from (H, W) or (H, W, 3); raises ValueError otherwise."""
    shape = tuple(img_shape)
    if (len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 3)
            or any(int(side) != side or side < 1 for side in shape[:2])):
        raise ValueError(f'img_shape must be (H, W) or (H, W, 3) with positive sides, got {img_shape!r}')
    return int(shape[0]), int(shape[1])
