"""Reading and writing images and masks with clear, one-line errors.

The library works in RGB uint8 (H, W, 3) arrays (the Python API, the server, evaluation); files
are BGR to OpenCV and the network sees BGR, as the original's OpenCV reads do. So an image is
flipped once at each of those boundaries, by `swap_rb`: file -> RGB (`read_image`), RGB -> network
(`inference.to_network`), network -> RGB (`inference.from_network`), RGB -> file (`write_image`).

Inpainting keeps what the network does not see: `read_image_as_is` (the command line, batches)
and `decode_image_as_is` (the server) keep an image's alpha channel and 16-bit depth, which
`Inpainter.inpaint` gives back (RGBA in, RGBA out; uint16 in, uint16 out), and `write_image` writes
them where the format can hold them (PNG, TIFF; alpha also WebP, BMP), else warns.

Masks follow one rule everywhere (files, batch, evaluation, the server and the Python API), defined
by `mask_holes`: 0/1 and 0/255 masks, strokes of any colour on black, and strokes painted on a
transparent layer are holes where painted. `read_mask(path, original=True)` keeps the original's
rule for `test.py --original`: a hole where OpenCV's first channel (blue) is > 127.5.

Edge maps (the guided mode's sketches) follow one rule too, the original's
`channel / 255 > edge_threshold` (`edge_lines`, `read_edge`): white lines on black, as edge
detectors write them. Only the lines inside the hole guide the network (`generator.hole_edges`).
"""
import os

import cv2
import numpy as np
from absl import logging

from inpaint import files


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
ALPHA_EXTENSIONS = ('.png', '.webp', '.bmp', '.tif', '.tiff')  # OpenCV writes 4 channels there
DEEP_EXTENSIONS = ('.png', '.tif', '.tiff')  # and 16 bits (others: truncated to 8 by OpenCV)


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


def read_image_as_is(path):
    """Reads an image file for inpainting: as `read_image`, but keeping its alpha channel and its
    16-bit depth, which the network does not use and `Inpainter.inpaint` gives back.

    Returns:
        RGB (H, W, 3) or, for a file with an alpha channel (RGBA, gray + alpha, a palette with
        transparency), RGBA (H, W, 4); uint8, or uint16 for a 16-bit file. Gray is repeated to
        three channels.
    Raises:
        InputError: missing, unreadable or empty file, or an unsupported pixel type.
    """
    return decode_image_as_is(_file_bytes(path), path)


def decode_image_as_is(data, name='image'):
    """Encoded image bytes -> RGB(A) uint8 or uint16, as `read_image_as_is` (which see).

    The colours are decoded as `read_image` decodes them (EXIF orientation applied); the alpha
    channel comes from a second, unchanged decode (not for JPEG, which has none). An alpha whose
    size differs from the colours' (a rotated EXIF orientation) is dropped with a warning.
    """
    colour = to_rgb(_check_depth(_decode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH, name), name),
                    name)
    if bytes(data[:2]) == b'\xff\xd8':  # JPEG: no alpha
        return colour
    full = _decode(data, cv2.IMREAD_UNCHANGED, name)
    if full.ndim != 3 or full.shape[2] != 4:
        return colour
    alpha = full[:, :, 3]
    if alpha.shape != colour.shape[:2]:
        logging.warning('%s: the alpha channel is %dx%d but the oriented image %dx%d; the alpha is '
                        'dropped', name, alpha.shape[1], alpha.shape[0], colour.shape[1],
                        colour.shape[0])
        return colour
    return np.concatenate([colour, alpha[:, :, None]], axis=2)


def to_8_bits(array):
    """uint16 -> uint8 by `/ 257`, rounded (65535 -> 255, 32896 -> 128); uint8 is returned as is."""
    if array.dtype != np.uint16:
        return array
    return (array.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)


def to_rgb(array, name='image'):
    """A gray or BGR(A) OpenCV array (H, W[, C]) of uint8 or uint16 -> RGB (H, W, 3), same depth
    (gray repeated, alpha dropped)."""
    return swap_rb(_three_channels(array, name))


def to_bgr_uint8(array, name='image'):
    """A gray or BGR(A) OpenCV array (H, W[, C]) -> BGR uint8 (H, W, 3), channel order kept.

    16-bit values are scaled to 8 bits (`to_8_bits`), gray is repeated to three channels and an
    alpha channel is dropped.
    """
    return _three_channels(to_8_bits(_check_depth(array, name)), name)


def _check_depth(array, name):
    """`array`, unless its pixels are neither uint8 nor uint16 (InputError)."""
    if array.dtype not in (np.uint8, np.uint16):
        raise InputError(f'{name}: unsupported pixel type {array.dtype}; save it as 8-bit PNG or JPEG')
    return array


def _three_channels(array, name):
    """(H, W[, C]) with C in 1, 3, 4 -> (H, W, 3): gray repeated, alpha dropped, order kept."""
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels == 1:
        return np.repeat(array, 3, axis=2)
    if channels in (3, 4):
        return array[:, :, :3]
    raise InputError(f'{name}: {channels} channels is not an image; use a gray, RGB or RGBA file')


def swap_rb(array):
    """RGB(A) <-> BGR(A): (..., W, 3 or 4) uint8, uint16 or float32 -> C-contiguous, the first and
    third channels swapped (alpha stays last).

    The one channel flip at each boundary (OpenCV's BGR files, the network's BGR input). One
    OpenCV pass: at 2048x2048 it takes 0.5 ms (uint8), where NumPy's `a[..., ::-1]` copy takes
    14 ms, and a reversed view slows every later pass over it.
    """
    array = np.ascontiguousarray(array)
    if array.size == 0 or array.dtype not in (np.uint8, np.uint16, np.float32):
        flipped = np.concatenate([array[..., 2::-1], array[..., 3:]], axis=-1)
        return np.ascontiguousarray(flipped)  # what OpenCV cannot take
    channels = array.shape[-1]
    rows = array.reshape(-1, array.shape[-2], channels)  # (B * H, W, C): one OpenCV image
    code = cv2.COLOR_RGBA2BGRA if channels == 4 else cv2.COLOR_RGB2BGR
    return cv2.cvtColor(rows, code).reshape(array.shape)


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
    value, painted = _ink(mask, name, 'a mask')
    if painted:
        return value > 0
    if value.dtype == bool:
        return value
    return value > _full_scale(value) / 2


def _ink(array, name, kind):
    """The value a mask or edge rule tests, per pixel: (H, W), and whether it is a painted
    layer's alpha (an alpha channel that is not the same everywhere) rather than the largest
    colour channel.

    Raises:
        InputError: `array` is not (H, W) or (H, W, 1..4); the message says it is not `kind`.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or not 1 <= array.shape[2] <= 4:
        raise InputError(f'{name}: shape {array.shape} is not {kind}; give (H, W) or a gray, RGB '
                         f'or RGBA image')
    if array.shape[2] in (2, 4):
        alpha = array[:, :, -1]
        if alpha.size and alpha.min() != alpha.max():
            return alpha, True
        array = array[:, :, :-1]
    return array.max(axis=2), False


def _full_scale(value):
    """The value of full ink of an array (`mask_scale` of its largest value)."""
    return mask_scale(value.max() if value.size else 0, value.dtype)


def mask_scale(top, dtype):
    """The value of full ink of an array whose largest value is `top`: 1 for a 0/1 array (`top`
    at most 1), else 65535 for 16-bit values and 255 for the others."""
    return 1 if top <= 1 else 65535 if np.dtype(dtype) == np.uint16 else 255


EDGE_THRESHOLD = 0.6  # the original's inpaint.yml `edge_threshold`


EDGE_SCALE = np.float32(1 / 255)  # the original graph's `x / 255.`, as TensorFlow runs it


def above_edge_threshold(value, threshold=EDGE_THRESHOLD):
    """The original's edge test, `value / 255 > threshold`, with the arithmetic of its graph.

    TensorFlow computes `x / 255.` there as `x * float32(1 / 255)` (`EDGE_SCALE`, as
    `inference.to_network`'s `/ 127.5`); on the values 0..255 that differs from a true division at
    some thresholds (0.2: 51 is a line by the product, not by the quotient), and this function
    gives the product's answer for every value and threshold. Operators only, so it serves NumPy
    arrays and backend tensors alike (training's batches, the serving model's twin).

    Args:
        value: 0..255 values, any shape: a NumPy array of any real dtype (computed in float32),
            e.g. OpenCV's channel 0 of an edge image, or a float32 backend tensor, e.g. a
            training batch's.
        threshold: `edge_threshold`.
    Returns:
        bool array or tensor of `value`'s shape, True on an edge line.
    """
    if isinstance(value, (np.ndarray, np.generic, int, float, list, tuple)):
        value = np.asarray(value, np.float32)
    return value * EDGE_SCALE > np.float32(threshold)


def edge_lines(edge, threshold=EDGE_THRESHOLD, name='edge'):
    """The project's one edge rule: an edge image -> bool (H, W), True on an edge line.

    `value / 255 > threshold` (`above_edge_threshold`), where value is the largest colour
    channel (so grey edge maps, the only kind edge detectors write, give the original's answer,
    and lines of any colour count), scaled as `mask_holes` scales: 0/1 arrays and 16-bit images
    are brought to 0..255 first. A painted layer (an alpha channel that is not the same
    everywhere) is a line wherever its alpha passes the test, whatever the colour. bool: True =
    line.

    Args:
        edge: an array as `mask_holes` takes a mask.
        threshold: `edge_threshold` (0.6 in the original).
        name: what the error names.
    Returns and raises as `mask_holes` does: bool (H, W), True = line.
    """
    value, _ = _ink(edge, name, 'an edge image')
    if value.dtype == bool:
        return value
    return above_edge_threshold(value.astype(np.float32) * np.float32(255 / _full_scale(value)),
                                threshold)


def read_mask(path, original=False):
    """Reads a mask file: holes by `mask_holes` (255, 1 or any colour = hole, transparent = kept).

    A mask without any hole (the image comes back unchanged) or that is a hole everywhere
    (nothing left to condition on) is logged as a warning naming the file (`mask_warning`).

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
    warning = mask_warning(holes)
    if warning and not holes.any():
        rule = ("the first channel is never above 127.5 (--original's rule)" if original else
                'no pixel is painted: give 255 or 1 (or any colour, or opaque paint on a '
                'transparent layer) where the holes are')
        warning = warning.replace('no hole;', f'no hole ({rule});')
    if warning:
        logging.warning('%s: %s', path, warning)
    return holes


def mask_warning(holes):
    """Why a mask gives no useful result, or None: it has no hole (the image comes back
    unchanged) or is a hole everywhere (nothing is left to condition on).

    Args:
        holes: bool (H, W), True = hole.
    """
    if not holes.any():
        return 'the mask has no hole; the image comes back unchanged'
    if holes.all():
        return ('the mask is a hole everywhere: no pixel is left to condition on, so the result '
                'is the network\'s guess from nothing; paint only what should be replaced')
    return None


def read_edge(path, threshold=EDGE_THRESHOLD, original=False, image_shape=None, image_name=''):
    """Reads an edge image (the guided mode's sketch): lines by `edge_lines`.

    Args:
        path: file path.
        threshold: `edge_threshold`.
        original: the original's reading instead: `cv2.imread` (8 bits, BGR) and its first
            channel (blue) tested, for `test.py --original`.
        image_shape: the shape (H, W[, C]) of the image it guides, if known: another size is an
            InputError naming `path` (and `image_name`).
    Returns:
        bool array (H, W), True on an edge line.
    """
    if original:
        lines = above_edge_threshold(_read(path, cv2.IMREAD_COLOR)[:, :, 0], threshold)
    else:
        lines = edge_lines(_read(path, cv2.IMREAD_UNCHANGED), threshold, path)
    if image_shape is not None:
        check_mask_size(lines.shape, image_shape, path, image_name, kind='edge image')
    return lines


def read_pair(image_path, mask_path, original=False):
    """Reads an image to inpaint and its mask, and checks that their sizes agree.

    Args:
        image_path, mask_path: files (see `read_image_as_is`, `read_mask`).
        original: read the mask with the original's rule (see `read_mask`).
    Returns:
        (RGB or RGBA (H, W, 3 or 4), uint8 or uint16, as the file has it; bool (H, W) with
        True = hole).
    Raises:
        InputError: either file unreadable, or the sizes differ (the message names both files).
    """
    image = read_image_as_is(image_path)
    mask = read_mask(mask_path, original=original)
    check_mask_size(mask.shape, image.shape, mask_path, image_path)
    return image, mask


def check_mask_size(mask_shape, image_shape, mask_name='mask', image_name='', kind='mask'):
    """Raises InputError unless a mask (or, with `kind`, an edge image) of `mask_shape`
    (H, W[, C]) fits an image of `image_shape`; the message names `mask_name` first."""
    if tuple(mask_shape[:2]) != tuple(image_shape[:2]):
        image = f'the image {image_name}' if image_name else 'the image'
        raise InputError(f'{mask_name}: {kind} is {mask_shape[1]}x{mask_shape[0]} but {image} is '
                         f'{image_shape[1]}x{image_shape[0]}; give {_ARTICLES.get(kind, "a")} {kind} of the '
                         f'image\'s size')


_ARTICLES = {'edge image': 'an'}


def read_flist(path, columns=None, optional=()):
    """Reads a file list: one entry per line.

    Blank lines, surrounding whitespace and lines starting with '#' are ignored. Relative paths
    are resolved against the list file's own folder, so a list works from any working directory;
    absolute paths are kept.

    Args:
        path: the list file.
        columns: None: each line is one path (it may contain spaces); or the names of the paths
            on each line, separated by whitespace, e.g. ('input', 'mask', 'output') for the
            original's batch lists (paths cannot contain spaces then, as in the original).
        optional: with `columns`, the names of further paths a line may have after them, e.g.
            ('edge',).
    Returns:
        list of str paths, or of tuples of `len(columns)` to `len(columns) + len(optional)` paths,
        in file order (may be empty).
    Raises:
        InputError: the list is missing, a folder or not UTF-8 text, or a line has another
            number of fields (the message names the file and line number).
    """
    entry = 'image path'
    if columns:
        entry = '"' + ' '.join(list(columns) + [f'[{name}]' for name in optional]) + '"'
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
                if not len(columns) <= len(fields) <= len(columns) + len(optional):
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


def file_by_stem(image, files, folder, kind='mask', suffix=''):
    """The file of `image` among `files` (`files_by_stem(folder)`): the one with the image's stem
    followed by `suffix`, any image extension. Masks and edge images in their own folders are
    matched with no suffix (`photo.jpg` takes `masks/photo.png`); the original's edge image beside
    its input with `suffix='_edge'` (`photo.jpg` takes `photo_edge.png`).

    Args:
        image: the image's path.
        files: {stem: [paths]} of `folder`.
        folder: the folder searched, for the message.
        kind: what is looked for, for the message ('mask', 'edge image').
        suffix: appended to the image's stem.
    Raises:
        InputError: naming the image, when `folder` has no file of that stem, or several.
    """
    name = stem(image) + suffix
    candidates = files.get(name, [])
    if not candidates:
        raise InputError(f'{image}: no {kind} named {name}.png (or another image extension) in '
                         f'{folder}; add one or move the image out')
    if len(candidates) > 1:
        names = ', '.join(os.path.basename(path) for path in candidates)
        raise InputError(f'{image}: several {kind}s in {folder} ({names}); keep one')
    return candidates[0]


def edge_path(image_path):
    """The edge image beside a training image, as the original's `train.py` names it:
    `a/photo.jpg` -> `a/photo_edge.jpg` (its `fname[:-4] + '_edge.jpg'`, here for any extension
    length)."""
    return os.path.splitext(image_path)[0] + '_edge.jpg'


def is_edge_image(path):
    """Whether `path` is named as an edge image beside a training image (`edge_path`):
    `photo_edge.jpg`."""
    return os.path.basename(path).endswith('_edge.jpg')


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


def write_image(path, image):
    """Writes an RGB or RGBA image, uint8 or uint16 (H, W, 3 or 4); missing folders are created.

    A format that cannot hold what the image has loses it with a warning naming the file: the
    alpha channel outside `ALPHA_EXTENSIONS` (JPEG), 16 bits outside `DEEP_EXTENSIONS` (scaled
    to 8 bits; OpenCV would clip them). Written under a temporary name beside `path` and renamed
    (`inpaint.files`), so a failed write leaves neither a half file nor the temporary one. An
    existing `path` is replaced: callers decide first whether it may be (`replaceable_output`).
    """
    ext = os.path.splitext(path)[1] or '.png'
    image = np.asarray(image)
    if image.shape[-1] == 4 and ext.lower() not in ALPHA_EXTENSIONS:
        logging.warning('%s: %s cannot hold the alpha channel, which is dropped; write .png to '
                        'keep it', path, ext)
        image = image[..., :3]
    if image.dtype == np.uint16 and ext.lower() not in DEEP_EXTENSIONS:
        logging.warning('%s: %s cannot hold 16 bits; written with 8 bits, write .png or .tif to '
                        'keep them', path, ext)
        image = to_8_bits(image)
    ok, encoded = cv2.imencode(ext, swap_rb(image))
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
    return _decode(_file_bytes(path), flags, path)


def _file_bytes(path):
    """The file's bytes as a uint8 array; InputError for a missing, empty file or a folder."""
    if not os.path.exists(path):
        raise InputError(f'{path}: file not found; check the path')
    if os.path.isdir(path):
        raise InputError(f'{path}: is a folder, not an image file; give a file')
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise InputError(f'{path}: file is empty; give a PNG or JPEG image')
    return data


def _decode(data, flags, name):
    """cv2.imdecode of bytes or a uint8 array; InputError naming `name` when it fails or is empty."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if array is None:
        raise InputError(f'{name}: cannot decode the image; give a readable PNG or JPEG file')
    if array.size == 0 or min(array.shape[:2]) == 0:
        raise InputError(f'{name}: image has no pixels; give a non-empty image')
    return array
