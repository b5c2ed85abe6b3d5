"""Training input pipeline: file lists and folders -> NumPy batches of BGR float32 images.

No TensorFlow: decoding uses OpenCV in a thread pool (OpenCV releases the GIL while it decodes
and resizes), so the same pipeline feeds training on TensorFlow, JAX and PyTorch.

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
- File order and crop offsets come from seeds derived from (base seed, pass) and (base seed,
  element index), and batches are assembled in element order, so a seeded pipeline gives the
  same batches on every run whatever the thread timing.
- Several processes training together (`shard=(index, count)`) each read a disjoint slice of
  every pass's shuffled order: the elements at positions index, index + count, ... of that pass
  (the same order and crops as one process would draw, given the same seed).
- 16-bit files are scaled to 8 bits as `imageio.read_image` does (`/ 257`, rounded), so
  training and inference see the same pixels; `cv2.imread` would truncate `>> 8`.

The guided mode (`edges=True`) reads `<name>_edge.jpg` beside each image (`imageio.edge_path`),
as the original's `train.py` does (a folder source leaves those files out of the images:
`training_images`), decodes it as the image and crops or resizes it with the same
offsets (as neuralgym's `DataFromFNames` crops a tuple of files). An image whose edge file is
missing, unreadable or of another size is skipped and counted like an unreadable image.
"""
import collections
import concurrent.futures
import itertools
import math
import os
import threading
import weakref

import cv2
import numpy as np
from absl import logging

from inpaint import imageio
from inpaint.imageio import IMAGE_EXTENSIONS, InputError, list_images, read_flist  # noqa: F401 (re-exported)


# What an unreadable file raises: imageio's one-line errors, OS errors (permissions, I/O) and
# OpenCV decoder errors. Anything else is a bug and is not swallowed.
_DECODE_ERRORS = (InputError, OSError, cv2.error)

# Batches decoded ahead of the consumer: enough to hide a slow file behind a training step,
# few enough to bound memory (elements in flight are uint8 crops).
PREFETCH_BATCHES = 3
# Default decoding threads: more than 8 rarely helps one accelerator and crowds small machines.
MAX_DEFAULT_THREADS = 8


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
    return imageio.to_bgr_uint8(array, path)  # a no-op on 8-bit files


def training_images(source):
    """The images of a training or validation source (a file list or a folder,
    `imageio.list_images`); a folder's edge images (`*_edge.jpg`, `imageio.is_edge_image`: the
    guided mode's, e.g. from scripts/make_edges.py) are left out, never trained on as photos.

    Raises:
        InputError: the source is missing or holds no images (edge images aside).
    """
    paths = list_images(source)
    if not os.path.isdir(source):
        return paths
    photos = [path for path in paths if not imageio.is_edge_image(path)]
    if not photos:
        raise InputError(f'{source}: holds only edge images (*_edge.jpg); give the folder of the '
                         f'photos they were made from')
    if len(photos) < len(paths):
        logging.info('%s: %d edge images (*_edge.jpg) left out of the training images', source,
                     len(paths) - len(photos))
    return photos


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

    def __init__(self, num_files, per_pass=None):
        self._num_files = num_files
        self._per_pass = num_files if per_pass is None else per_pass  # elements a pass gives here
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
        elements `k * num_files ... (k + 1) * num_files - 1` this pipeline reads, in any
        completion order) has finished without one image, so that a pipeline over unreadable
        files stops instead of filtering forever.
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
            finished = counts[0] >= self._per_pass
            if finished:
                del self._passes[index // self._num_files]
        if error is not None and first_time:
            logging.warning('Skipping an unreadable training image: %s', error)
        if finished and counts[1] == 0:
            raise InputError(f'no image could be read in a full pass over {self._per_pass} '
                             f'files (last: {error}); check the file list')


def make_dataset(paths, img_shape, random_crop, batch_size, shuffle=True, seed=None, repeat=True,
                 num_parallel_calls=None, shuffle_buffer=1000, shard=(0, 1), edges=False):
    """Builds the training pipeline: a stream of batches decoded by a thread pool.

    File names are shuffled each pass through a buffer of `shuffle_buffer` names, as tf.data's
    `shuffle` does (not its exact random stream): each name is drawn at random from the buffer,
    whose slot is refilled with the next name; a buffer that holds the whole list gives a uniform
    permutation, a buffer of 1 keeps the list order. Every pass is reshuffled with a generator
    seeded from `(seed, pass)`. Names are then decoded by `num_parallel_calls` threads
    (`decode_bgr`), cropped or resized (`crop_or_resize`, offsets from a generator seeded with
    `(seed, element index)`) and batched in element order, so two pipelines with the same seed
    give identical batches whatever the thread timing. From the first `next()` on, up to
    `PREFETCH_BATCHES` batches are decoded ahead of the consumer. Unreadable files are skipped
    with one warning each and counted in `.decode_stats`.

    Args:
        paths: image paths (e.g. from `list_images`).
        img_shape: (H, W) or (H, W, 3) of the output images.
        random_crop: random crops of `img_shape` (True) or resize to it (False).
        batch_size: images per batch; the last incomplete batch is dropped.
        shuffle: shuffle file names each pass.
        seed: int >= 0 for reproducible order and crops; None = fresh randomness.
        repeat: cycle forever (True) or stop after one pass (False).
        num_parallel_calls: decoding threads; None or -1 (tf.data's AUTOTUNE, as in inpaint.yml)
            = `min(8, os.cpu_count())`.
        shuffle_buffer: shuffle buffer size, in file names (cheap: names, not pixels).
        shard: (index, count): read only the elements at positions index, index + count, ... of
            each pass (one process of `count` training together; give them all the same seed).
        edges: the guided mode: each image's `<name>_edge.jpg` too (see the module docstring).
    Returns:
        A `BatchStream`: an iterator of float32 (batch_size, H, W, 3) BGR NumPy batches, values
        0..255 (with `edges`: (images, edge images) pairs of such batches, the edge images as
        the original's pipeline gives them, before its `edge_threshold`), with `decode_stats`
        (a `DecodeStats`) and `batch_shape`. Close it (`close()` or `with`) to stop its
        threads.
    Raises:
        InputError: no paths, or none of them can be read (checked before building, reading
            files in order until one decodes). If files become unreadable later, iterating
            raises InputError after a full pass without an image.
        ValueError: bad `img_shape`, `batch_size`, `seed`, `num_parallel_calls`,
            `shuffle_buffer` or `shard`.
    """
    paths = [os.fspath(path) for path in paths]
    height, width = _check_shape(img_shape)
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    if seed is not None and (int(seed) != seed or seed < 0):
        raise ValueError(f'seed must be a non-negative integer or None, got {seed!r}')
    if num_parallel_calls is None or num_parallel_calls == -1:
        num_parallel_calls = min(MAX_DEFAULT_THREADS, os.cpu_count() or 1)
    if int(num_parallel_calls) != num_parallel_calls or num_parallel_calls < 1:
        raise ValueError('num_parallel_calls must be a positive integer, or None or -1 for the '
                         f'default, got {num_parallel_calls!r}')
    if int(shuffle_buffer) != shuffle_buffer or shuffle_buffer < 1:
        raise ValueError(f'shuffle_buffer must be a positive integer, got {shuffle_buffer!r}')
    index, count = (int(n) for n in shard)
    if not 0 <= index < count:
        raise ValueError(f'shard must be (index, count) with 0 <= index < count, got {shard!r}')
    if not paths:
        raise InputError('no image paths given; give a non-empty file list or folder')
    _check_some_readable(paths, edges)

    # Unseeded pipelines still derive every generator from one base seed, so that crops stay
    # per element and the order per pass.
    base_seed = int(seed) if seed is not None else np.random.SeedSequence().entropy
    order = _file_order(len(paths), shuffle, int(shuffle_buffer), base_seed, repeat, index, count)
    load = _Loader(paths, (height, width), random_crop, base_seed,
                   DecodeStats(len(paths), len(range(index, len(paths), count))), edges)
    return BatchStream(load, order, int(batch_size), int(num_parallel_calls))


class BatchStream:
    """Iterator of training batches decoded by a thread pool; made by `make_dataset`.

    One stream is one run through the data (calling `iter()` on it returns itself); build another
    for a fresh start. Iterate it from one thread. An exception raised while loading an element
    (e.g. the InputError after a full pass without an image) is raised again, unchanged, by the
    `next()` that reaches that element, and the stream closes.

    Attributes:
        decode_stats: the `DecodeStats` of this stream.
        batch_shape: (batch_size, H, W, 3) of every batch (of images and of edge images).
        num_threads: decoding threads.
    """

    def __init__(self, load, order, batch_size, num_threads):
        self.decode_stats = load.stats
        self.batch_shape = (batch_size, *load.shape, 3)
        self._parts = 2 if load.edges else 1  # images (and edge images)
        self.num_threads = num_threads
        self._load = load
        # Iterator of (element index, position in the file list), pass after pass; the element
        # index is the position in the whole stream of passes: pass = index // num_files.
        self._order = order
        self._pending = collections.deque()  # futures in element order
        self._window = PREFETCH_BATCHES * batch_size + num_threads  # elements in flight
        self._closed = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            num_threads, thread_name_prefix='inpaint-data')
        # A stream dropped without close() still cancels its queued work.
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False,
                                           cancel_futures=True)

    def __iter__(self):
        return self

    def __next__(self):
        """Returns the next float32 batch (with edges: the (images, edge images) pair);
        StopIteration after one pass when not repeating."""
        if self._closed:
            raise StopIteration
        batches = [np.empty(self.batch_shape, np.float32) for _ in range(self._parts)]
        filled = 0
        try:
            self._submit()  # decoding starts at the first next(), as tf.data's does
            while filled < self.batch_shape[0]:
                if not self._pending:  # the single pass is over: drop the incomplete batch
                    raise StopIteration
                element = self._pending.popleft().result()  # a worker's exception is raised here
                self._submit()
                if element is not None:
                    for batch, array in zip(batches, element):
                        batch[filled] = array
                    filled += 1
        except BaseException:
            self.close()
            raise
        return tuple(batches) if self._parts == 2 else batches[0]

    def close(self):
        """Cancels queued work and waits for the running decodes; later `next()` stops."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._finalizer.detach()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _submit(self):
        """Keeps `_window` elements queued or decoding, in element order."""
        while len(self._pending) < self._window:
            element = next(self._order, None)
            if element is None:
                return
            self._pending.append(self._executor.submit(self._load, *element))


class _Loader:
    """Loads one element in a worker thread (it holds no reference to the stream, so a dropped
    stream can be freed and its finalizer run)."""

    def __init__(self, paths, shape, random_crop, base_seed, stats, edges=False):
        self.paths, self.shape, self.random_crop = paths, shape, random_crop
        self.base_seed, self.stats, self.edges = base_seed, stats, edges

    def __call__(self, index, position):
        """Returns element `index`: (image,) or (image, edge image), uint8 (H, W, 3) each, or
        None if a file is unreadable."""
        path = self.paths[position]
        try:
            arrays, failure = decode_element(path, self.edges), None
        except _DECODE_ERRORS as error:
            arrays, failure = None, error
        if failure is not None:  # recorded outside `except`, so a raise here is not chained
            self.stats.record(index, path, failure)  # raises after a full pass with nothing decoded
            return None
        # The same generator state for each array: the edge image is cropped with the image.
        fresh_rng = lambda: np.random.default_rng([self.base_seed, index]) if self.random_crop else None
        arrays = tuple(crop_or_resize(array, self.shape, self.random_crop, fresh_rng())
                       for array in arrays)
        self.stats.record(index, path)
        return arrays


def decode_element(path, edges=False):
    """(image,) or, with `edges`, (image, its `<name>_edge.jpg`), BGR uint8 (H, W, 3) each.

    Raises:
        InputError: a file missing or undecodable, or the edge image of another size.
    """
    image = decode_bgr(path)
    if not edges:
        return (image,)
    edge = decode_bgr(imageio.edge_path(path))
    if edge.shape != image.shape:
        raise InputError(f'{imageio.edge_path(path)}: edge image is {edge.shape[1]}x{edge.shape[0]} '
                         f'but {path} is {image.shape[1]}x{image.shape[0]}; make it again at the '
                         f'image\'s size (scripts/make_edges.py)')
    return image, edge


def _file_order(num_files, shuffle, shuffle_buffer, base_seed, repeat, shard_index=0, shard_count=1):
    """Yields (element index, position in the file list), pass after pass (one pass when not
    `repeat`): the elements index shard_index, shard_index + shard_count, ... of each pass."""
    for pass_number in (itertools.count() if repeat else [0]):
        if shuffle:
            # spawn_key keeps these generators apart from the crop ones, seeded with [seed, index].
            sequence = np.random.SeedSequence([base_seed, pass_number], spawn_key=(1,))
            positions = _buffer_shuffle(num_files, shuffle_buffer, np.random.default_rng(sequence))
        else:
            positions = range(num_files)
        first = pass_number * num_files
        for offset, position in enumerate(positions):
            if offset % shard_count == shard_index:
                yield first + offset, position


def _buffer_shuffle(num_items, buffer_size, rng):
    """Yields `range(num_items)` shuffled through a buffer of `buffer_size` items (as tf.data).

    Each output is drawn uniformly from the buffer and its slot is refilled with the next item,
    or with the buffer's last item once the input is exhausted.
    """
    buffer = list(range(min(buffer_size, num_items)))
    upcoming = len(buffer)
    while buffer:
        slot = int(rng.integers(len(buffer)))
        yield buffer[slot]
        if upcoming < num_items:
            buffer[slot] = upcoming
            upcoming += 1
        else:
            buffer[slot] = buffer[-1]
            buffer.pop()


def _check_some_readable(paths, edges=False):
    """Raises InputError unless one of `paths` (with `edges`, and its edge image) decodes; stops
    at the first that does."""
    first_error = None
    for path in paths:
        try:
            decode_element(path, edges)
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
