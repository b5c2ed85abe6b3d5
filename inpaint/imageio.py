"""Reading and writing images and masks with clear, one-line errors.

The library works in RGB uint8 (H, W, 3) arrays (the Python API, the server, evaluation); files
are BGR to OpenCV and the network sees BGR, as the original's OpenCV reads do. So an image is
flipped once at each of those boundaries, by `swap_rb`: file -> RGB (`read_image`), RGB -> network
(`inference.to_network`), network -> RGB (`inference.from_network`), RGB -> file (`write_image`).

Masks follow one rule everywhere (files, batch, evaluation, the server and the Python API), defined
by `mask_holes`: 0/1 and 0/255 masks, strokes of any colour on black, and strokes painted on a
transparent layer are holes where painted. `read_mask(path, original=True)` keeps the original's
rule for `test.py --original`: a hole where OpenCV's first channel (blue) is > 127.5.
"""
import os

import cv2
import numpy as np
from absl import logging

from inpaint import files


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


class InputError(ValueError):
    """A user-facing input problem; the message is one line naming the file and the fix."""


def read_image(path):
    """Reads an image file as RGB uint8.

    Pixels are those of `cv2.imread` (as the original reads them): grayscale is repeated to three
    channels, an alpha channel is dropped, EXIF orientation is applied; 16-bit files are scaled to
    8 bits.

    Args:
        path: file path.
    Returns:
        uint8 array (H, W, 3), RGB.
    Raises:
        InputError: missing, unreadable or empty file.
    """
    # IMREAD_COLOR as the original's cv2.imread (honours EXIF orientation, drops alpha);
    # ANYDEPTH keeps 16-bit files for proper scaling.
    array = _read(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    return to_rgb_uint8(array, path)


def to_rgb_uint8(array, name='image'):
    """A gray or BGR(A) OpenCV array (H, W[, C]) -> RGB uint8 (H, W, 3) (see `to_bgr_uint8`)."""
    return swap_rb(to_bgr_uint8(array, name))


def to_bgr_uint8(array, name='image'):
    """A gray or BGR(A) OpenCV array (H, W[, C]) -> BGR uint8 (H, W, 3), channel order kept.

    16-bit values are scaled to 8 bits (`/ 257`, rounded), gray is repeated to three channels and
    an alpha channel is dropped.
    """
    if array.dtype == np.uint16:
        array = (array.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(f'{name}: unsupported pixel type {array.dtype}; save it as 8-bit PNG or JPEG')
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels == 1:
        return np.repeat(array, 3, axis=2)
    if channels in (3, 4):
        return array[:, :, :3]
    raise InputError(f'{name}: {channels} channels is not an image; use a gray, RGB or RGBA file')


def swap_rb(array):
    """RGB <-> BGR: (..., W, 3) uint8 or float32 -> C-contiguous, first and last channels swapped.

    The one channel flip at each boundary (OpenCV's BGR files, the network's BGR input). One
    OpenCV pass: at 2048x2048 it takes 0.5 ms (uint8), where NumPy's `a[..., ::-1]` copy takes
    14 ms, and a reversed view slows every later pass over it.
    """
    array = np.ascontiguousarray(array)
    if array.size == 0 or array.dtype not in (np.uint8, np.uint16, np.float32):
        return np.ascontiguousarray(array[..., ::-1])  # what OpenCV cannot take
    rows = array.reshape(-1, array.shape[-2], 3)  # (B * H, W, 3): one OpenCV image
    return cv2.cvtColor(rows, cv2.COLOR_RGB2BGR).reshape(array.shape)


def mask_holes(mask, name='mask'):
    """The project's one mask rule: a mask array -> bool (H, W), True = hole.

    - Alpha: a mask with an alpha channel (gray+alpha or colour+alpha) whose alpha is not the same
      everywhere is a painted layer: a hole wherever alpha > 0, whatever the colour (so black
      strokes on a transparent PNG work). An alpha the same everywhere (e.g. all 255) says
      nothing; the colour is used.
    - Colour: v is the largest of the colour channels (so the channel order does not matter and
      red, green or blue strokes all count). The scale is 1 if the mask's largest value is at
      most 1 (a 0/1 mask), 65535 for 16-bit masks, else 255; a hole wherever v > scale / 2. So
      0/1 and 0/255 masks mean the same, and JPEG noise around 0 (or 255) is ignored.
    - bool: True (in any channel) = hole.

    Args:
        mask: (H, W) or (H, W, C) array, C in 1..4 (gray, gray+alpha, colour, colour+alpha);
            bool, unsigned or signed integers, or floats.
        name: what the error names.
    Returns:
        bool array (H, W).
    Raises:
        InputError: not (H, W) or (H, W, 1..4).
    """
    mask = np.asarray(mask)
    if mask.ndim == 2:
        mask = mask[:, :, None]
    if mask.ndim != 3 or not 1 <= mask.shape[2] <= 4:
        raise InputError(f'{name}: shape {mask.shape} is not a mask; give (H, W) or a gray, RGB '
                         f'or RGBA mask')
    if mask.shape[2] in (2, 4):
        alpha = mask[:, :, -1]
        if alpha.size and alpha.min() != alpha.max():
            return alpha > 0
        mask = mask[:, :, :-1]
    value = mask.max(axis=2)
    if value.dtype == bool:
        return value
    top = value.max() if value.size else 0
    scale = 1 if top <= 1 else 65535 if value.dtype == np.uint16 else 255
    return value > scale / 2


def read_mask(path, original=False):
    """Reads a mask file: holes by `mask_holes` (255, 1 or any colour = hole, transparent = kept).

    A mask without any hole is logged as a warning naming the file (the image comes back
    unchanged).

    Args:
        path: file path.
        original: the original's rule instead: a hole where OpenCV's first channel is > 127.5
            (16-bit files scaled to 8 bits), for `test.py --original`.
    Returns:
        bool array (H, W), True = hole.
    """
    array = _read(path, cv2.IMREAD_UNCHANGED)
    if original:
        if array.dtype == np.uint16:
            array = array.astype(np.float32) / 257.0
        holes = (array if array.ndim == 2 else array[:, :, 0]) > 127.5
    else:
        holes = mask_holes(array, path)
    if not holes.any():
        rule = ("the first channel is never above 127.5 (--original's rule)" if original else
                'no pixel is painted: give 255 or 1 (or any colour, or opaque paint on a '
                'transparent layer) where the holes are')
        logging.warning('%s: the mask has no hole (%s); the image comes back unchanged', path, rule)
    return holes


def read_pair(image_path, mask_path, original=False):
    """Reads an image and its mask, and checks that their sizes agree.

    Args:
        image_path, mask_path: files (see `read_image`, `read_mask`).
        original: read the mask with the original's rule (see `read_mask`).
    Returns:
        (uint8 RGB (H, W, 3), bool (H, W) with True = hole).
    Raises:
        InputError: either file unreadable, or the sizes differ (the message names both files).
    """
    image = read_image(image_path)
    mask = read_mask(mask_path, original=original)
    check_mask_size(mask.shape, image.shape, mask_path, image_path)
    return image, mask


def check_mask_size(mask_shape, image_shape, mask_name='mask', image_name=''):
    """Raises InputError unless a mask of `mask_shape` (H, W[, C]) fits an image of `image_shape`."""
    if tuple(mask_shape[:2]) != tuple(image_shape[:2]):
        image = f'the image {image_name}' if image_name else 'the image'
        raise InputError(f'{mask_name}: mask is {mask_shape[1]}x{mask_shape[0]} but {image} is '
                         f'{image_shape[1]}x{image_shape[0]}; give a mask of the image\'s size')


def read_flist(path, columns=None):
    """Reads a file list: one entry per line.

    Blank lines, surrounding whitespace and lines starting with '#' are ignored. Relative paths
    are resolved against the list file's own folder, so a list works from any working directory;
    absolute paths are kept.

    Args:
        path: the list file.
        columns: None: each line is one path (it may contain spaces); or the names of the paths
            on each line, separated by whitespace, e.g. ('input', 'mask', 'output') for the
            original's batch lists (paths cannot contain spaces then, as in the original).
    Returns:
        list of str paths, or of tuples of `len(columns)` paths, in file order (may be empty).
    Raises:
        InputError: the list is missing, a folder or not UTF-8 text, or a line does not have
            exactly `len(columns)` fields (the message names the file and line number).
    """
    entry = f'"{" ".join(columns)}"' if columns else 'image path'
    if not os.path.isfile(path):
        what = 'is a folder, not a file list' if os.path.isdir(path) else 'file list not found'
        raise InputError(f'{path}: {what}; give a text file with one {entry} per line')
    folder = os.path.dirname(os.path.abspath(path))
    entries = []
    try:
        with open(path, encoding='utf-8') as handle:
            for number, line in enumerate(handle, 1):
                line = line.strip()
                if not line or line.startswith('#'):
                    continue
                if columns is None:
                    entries.append(os.path.join(folder, line))  # join keeps absolute paths
                    continue
                fields = line.split()
                if len(fields) != len(columns):
                    raise InputError(f'{path}:{number}: expected {entry}, got {len(fields)} '
                                     f'field(s); paths with spaces are not supported')
                entries.append(tuple(os.path.join(folder, field) for field in fields))
    except UnicodeDecodeError as error:
        raise InputError(f'{path}: not a UTF-8 text file ({error.reason}); give a text file '
                         f'list') from None
    return entries


def list_images(source):
    """Lists images from a file list or a folder.

    Args:
        source: a file list (see `read_flist`) or a folder; a folder gives its image files
            (extensions in `IMAGE_EXTENSIONS`, any case), sorted, not recursive.
    Returns:
        non-empty list of str paths.
    Raises:
        InputError: the source is missing or holds no images.
    """
    if os.path.isdir(source):
        paths = folder_images(source)
    elif os.path.exists(source):
        paths = read_flist(source)
    else:
        raise InputError(f'{source}: not found; give a file list or a folder of images')
    if not paths:
        raise InputError(f'{source}: no images listed; give a non-empty file list or folder '
                         f'with {"/".join(IMAGE_EXTENSIONS)} files')
    return paths


def folder_images(folder):
    """Image files of a folder (extensions in `IMAGE_EXTENSIONS`, any case), sorted, not recursive;
    may be empty."""
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, name)))


def files_by_stem(folder):
    """Image files of a folder (see `folder_images`) by file stem: {stem: [paths]}; a stem has
    several paths when only the extension differs (`photo.png`, `photo.bmp`)."""
    by_stem = {}
    for path in folder_images(folder):
        by_stem.setdefault(stem(path), []).append(path)
    return by_stem


def mask_by_stem(image, masks, folder):
    """The mask of `image`: the one file of `masks` (`files_by_stem(folder)`) with its stem.

    Raises:
        InputError: naming the image, when `folder` has no mask of that stem, or several.
    """
    name = stem(image)
    candidates = masks.get(name, [])
    if not candidates:
        raise InputError(f'{image}: no mask named {name}.png (or another image extension) in '
                         f'{folder}; add one or move the image out')
    if len(candidates) > 1:
        names = ', '.join(os.path.basename(path) for path in candidates)
        raise InputError(f'{image}: several masks in {folder} ({names}); keep one')
    return candidates[0]


def stem(path):
    """The file name without folder and extension: `a/photo.jpg` -> `photo`."""
    return os.path.splitext(os.path.basename(path))[0]


def check_output_path(path):
    """Checks, before any work, that an image can be written at `path`; creates nothing.

    Raises:
        InputError: `path` is a folder or ends with a slash, its extension is not one OpenCV can
            write (`.xyz`, or none), a folder on its way is a file, or the folder that would hold
            it is not writable.
    """
    if path.endswith(('/', os.sep)) or os.path.isdir(path):
        raise InputError(f'{path}: output is a folder; give an image file name such as out.png')
    if not cv2.haveImageWriter(path):
        raise InputError(f'{path}: cannot write this image type; use .png or .jpg')
    check_output_folder(os.path.dirname(os.path.abspath(path)), name=path)


def check_output_folder(folder, name=None):
    """Checks, before any work, that `folder` is or can be made a writable folder; creates nothing.

    Args:
        folder: the folder (missing parts are created later by the writer, e.g. `write_image`).
        name: the path named in the error (default `folder`).
    Raises:
        InputError: `folder` or one of its parents is a file, or the nearest existing one is not
            writable.
    """
    name = folder if name is None else name
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):  # the nearest existing parent; the rest will be created
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f'{name}: {existing} is a file, not a folder; choose another output path')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f'{name}: cannot write into {existing} (permission denied); choose a '
                         f'writable folder')


def write_image(path, rgb):
    """Writes an RGB uint8 (H, W, 3) array; missing folders are created.

    Written under a temporary name beside `path` and renamed (`inpaint.files`), so a failed write
    leaves neither a half file nor the temporary one. An existing `path` is replaced: callers
    decide first whether it may be (`replaceable_output`).
    """
    ext = os.path.splitext(path)[1] or '.png'
    ok, encoded = cv2.imencode(ext, swap_rb(rgb))
    if not ok:
        raise InputError(f'{path}: cannot encode an image with extension {ext!r}; use .png or .jpg')
    with files.written_atomically(path) as partial:
        with open(partial, 'wb') as handle:
            handle.write(encoded.tobytes())


def replaceable_output(path, overwrite):
    """Why an output image may not be written at `path`, or None when it may.

    Nothing there, or an empty file (nothing to lose): it may. An existing image (it decodes):
    only with `overwrite`. Anything else (a file that is not an image, a folder): never.

    Returns:
        None, or a one-line reason starting with `path`.
    """
    if not os.path.lexists(path) or (os.path.isfile(path) and os.path.getsize(path) == 0):
        return None
    if os.path.isdir(path):
        return f'{path}: is a folder; give an image file name such as out.png'
    if not is_image_file(path):
        return (f'{path}: exists and is not an image; it is never replaced: move it away or '
                f'choose another output')
    if not overwrite:
        return f'{path}: exists; pass --overwrite to replace it, or choose another output'
    return None


def is_image_file(path):
    """Whether `path` is a file that decodes as an image."""
    try:
        _read(path, cv2.IMREAD_UNCHANGED)
    except (InputError, OSError):
        return False
    return True


def write_mask(path, mask):
    """Writes a bool (H, W) mask as a gray PNG, 255 = hole."""
    write_image(path, np.repeat((np.asarray(mask, bool) * 255).astype(np.uint8)[:, :, None], 3, 2))


def _read(path, flags):
    if not os.path.exists(path):
        raise InputError(f'{path}: file not found; check the path')
    if os.path.isdir(path):
        raise InputError(f'{path}: is a folder, not an image file; give a file')
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise InputError(f'{path}: file is empty; give a PNG or JPEG image')
    array = cv2.imdecode(data, flags)
    if array is None:
        raise InputError(f'{path}: cannot decode the image; give a readable PNG or JPEG file')
    if array.size == 0 or min(array.shape[:2]) == 0:
        raise InputError(f'{path}: image has no pixels; give a non-empty image')
    return array
