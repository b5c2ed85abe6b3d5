"""Reading and writing images and masks with clear, one-line errors.

The library works in RGB uint8 (H, W, 3) arrays; the network sees BGR, as the original's OpenCV
reads do (see `inference.py`). Mask files follow the original: a pixel is a hole where the first
channel is > 127.5, so 255 = hole.
"""
import os

import cv2
import numpy as np


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
    """Converts a gray, BGR(A) OpenCV array or an RGB(A) array's dtype/channels to RGB uint8.

    Arrays from `cv2` are BGR; this is only called on those (`read_image`), so the channel
    order is reversed here.
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
        return np.ascontiguousarray(array[:, :, 2::-1])
    raise InputError(f'{name}: {channels} channels is not an image; use a gray, RGB or RGBA file')


def read_mask(path):
    """Reads a mask file: hole where the first channel is > 127.5 (255 = hole), as the original.

    Args:
        path: file path.
    Returns:
        bool array (H, W), True = hole.
    """
    array = _read(path, cv2.IMREAD_UNCHANGED)
    if array.dtype == np.uint16:
        array = array.astype(np.float32) / 257.0
    first = array if array.ndim == 2 else array[:, :, 0]  # OpenCV's first channel, as the original
    return first > 127.5


def read_pair(image_path, mask_path):
    """Reads an image and its mask, and checks that their sizes agree.

    Args:
        image_path, mask_path: files (see `read_image`, `read_mask`).
    Returns:
        (uint8 RGB (H, W, 3), bool (H, W) with True = hole).
    Raises:
        InputError: either file unreadable, or the sizes differ (the message names both files).
    """
    image = read_image(image_path)
    mask = read_mask(mask_path)
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


def write_image(path, rgb):
    """Writes an RGB uint8 (H, W, 3) array; the folder is created if needed."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(path)[1] or '.png'
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise InputError(f'{path}: cannot encode an image with extension {ext!r}; use .png or .jpg')
    partial = f'{path}.partial'
    with open(partial, 'wb') as handle:  # then renamed: a failed write leaves no half file
        handle.write(encoded.tobytes())
    os.replace(partial, path)


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
