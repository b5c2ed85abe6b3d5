"""Image + mask (+ edge, for a guided model) -> inpainted image, with the original's behaviour
available for parity.

Default behaviour (`original=False`): any size works (edge-padded to a bucketed size, see
`padded_size`, and cropped back), gray and RGBA inputs work, pixels outside the hole are returned
untouched, hole pixels are rounded to the nearest integer, and each image of a batch keeps its own
mask. Grey in, grey out: an input whose three channels are equal everywhere (a gray file or
(H, W) array) gets a grey fill, the luminance of the network's (`grey_if_grey`); the result is
still RGB (H, W, 3), with equal channels. Masks follow `imageio.mask_holes`. The network is
compiled once per padded input shape on every backend (`inpaint.backends`).

Edge-guided models (`generator.guided`) take an edge image beside each image: its lines
(`imageio.edge_lines` with `edge_threshold`) guide the fill, and only those inside the hole count
(`generator.hole_edges`, in the network). An image without an edge gets none (no lines). The edge
is padded, cropped and batched with its image; in a batch each image keeps its own edge, in
original mode too (the original's server graph shares only the first mask).

Original behaviour (`original=True`), as the authors' `test.py`: the image is cropped to a multiple
of 8, the output is the float composite `x2 * mask + image * (1 - mask)` cast with
`saturate_cast` (truncation, which can also lower known pixels by one), and a batch uses the first
mask for every image; a grey input's fill is left as the network made it (in colour).
"""
import numpy as np

from inpaint import backends, hole_attention, pixels
from inpaint.checkpoint import load_models
from inpaint.flow import offset_flow
from inpaint.generator import GRID, NOT_GUIDED, composite, with_dtype
from inpaint.imageio import (EDGE_THRESHOLD, InputError, check_mask_size, edge_lines, mask_holes,
                             swap_rb, to_8_bits)
from inpaint.restricted import RestrictedGenerator

# Inpainter's precisions: the generator's dtype policy for each.
PRECISIONS = {'float32': 'float32', 'bfloat16': 'mixed_bfloat16'}


def dtype_policy(precision):
    """The generator's Keras dtype policy for an Inpainter `precision` (a key of `PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {tuple(PRECISIONS)}, got {precision!r}')
    return PRECISIONS[precision]


def padded_size(n):
    """The size an image side of `n` pixels is padded to: a multiple of 8, bucketed so that a
    folder of mixed sizes compiles a few shapes only (8 buckets per octave: at most 12.5% extra).
    E.g. 256 -> 256, 300 -> 320, 600 -> 640, 1000 -> 1024."""
    return backends.bucket(n, multiple=GRID)


def to_network(image_rgb):
    """RGB uint8 (B, H, W, 3) -> the network's BGR float32 in [-1, 1] (`pixels.to_network`)."""
    bgr = swap_rb(np.asarray(image_rgb))  # flipped before the cast: a quarter of the bytes
    return pixels.to_network(bgr.astype(np.float32))


def from_network(x_bgr, rounding=False):
    """BGR float in [-1, 1] -> RGB uint8 (`pixels.from_network`), truncated (`saturate_cast`) or
    rounded."""
    y = pixels.from_network(np.asarray(x_bgr, np.float32))
    y = np.rint(y) if rounding else y
    return swap_rb(np.clip(y, 0, 255).astype(np.uint8))


# ITU-R BT.601 luminance (OpenCV's and Pillow's RGB -> grey) in thousandths: Y = RGB . LUMA / 1000.
# With integer weights the sums are integers below 2**24, exact in float32 in any order, so every
# backend (and `serving.grey_if_grey`) rounds the same value the same way.
LUMA = np.array([299, 587, 114], np.float32)
LUMA_SCALE = 1000


def grey_if_grey(images, filled):
    """Grey in, grey out: the fills of grey inputs become grey.

    Args:
        images: uint8 RGB (B, H, W, 3), the inputs; an input is grey when its three channels are
            equal at every pixel (a gray file or array, repeated to RGB, or an RGB file so made).
        filled: uint8 RGB (B, H, W, 3), the network's fills.
    Returns:
        `filled`, where each grey input's fill is replaced by its luminance
        Y = (299 R + 587 G + 114 B) / 1000, rounded half up, in all three channels.
    """
    grey = np.all(images == images[..., :1], axis=(1, 2, 3))  # (B,)
    if not grey.any():
        return filled
    weighted = filled[grey].astype(np.float32) @ LUMA  # (G, H, W), exact integers
    luma = np.floor((weighted + LUMA_SCALE / 2) / LUMA_SCALE).astype(np.uint8)
    filled = filled.copy()
    filled[grey] = luma[..., None]  # (G, H, W, 1) -> 3 channels
    return filled


def standardize_image(image, name='image'):
    """Any uint8 or uint16 gray (H, W) / (H, W, 1), RGB or RGBA array -> the RGB uint8 (H, W, 3)
    the network sees (16 bits scaled to 8 as files are, `imageio.to_8_bits`; alpha left out)."""
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f'{name}: pixels are {image.dtype}; pass uint8 RGB values 0..255 (or uint16)')
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputError(f'{name}: shape {image.shape} is not an image; pass (H, W), (H, W, 3) '
                         f'or (H, W, 4)')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f'{name}: image has no pixels; pass a non-empty image')
    image = to_8_bits(image)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def restore_format(result, holes, image, original=False):
    """The inpainted RGB uint8 `result` in the format of the input `image`.

    Args:
        result: uint8 RGB (h, w, 3), the inpainted image (with `original`, cropped to a multiple
            of 8: h, w at most the input's).
        holes: bool (H, W), True = hole.
        image: the input as given to `Inpainter.inpaint` (uint8 or uint16; (H, W[, 1, 3 or 4])).
        original: the authors' mode, whose known pixels are not the input's own.
    Returns:
        `result` when the input is 8-bit without alpha; for a uint16 input, uint16: the input's
        own values outside the hole (not with `original`), the fill times 257 inside; for an RGBA
        input, the input's alpha channel appended unchanged, (h, w, 4).
    """
    image = np.asarray(image)
    image = image[:, :, None] if image.ndim == 2 else image
    height, width = result.shape[:2]
    image, holes = image[:height, :width], holes[:height, :width]
    if image.dtype == np.uint16:
        filled = result.astype(np.uint16) * np.uint16(257)
        colour = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
        result = filled if original else np.where(holes[:, :, None], filled, colour)
    if image.shape[2] == 4:
        result = np.concatenate([result, image[:, :, 3:]], axis=2)
    return result


def standardize_mask(mask, shape, name='mask'):
    """A mask array (H, W[, C]) -> bool (H, W), True = hole, by the one rule `imageio.mask_holes`:
    bool, 0/1 and 0/255 masks, colour strokes on black, and painted alpha all work."""
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise InputError(f'{name}: shape {mask.shape} is not a mask; pass (H, W)')
    check_mask_size(mask.shape, shape, name)
    return mask_holes(mask, name)


NETWORK_INPUT = ('predict takes image_bgr float32 (B, H, W, 3), BGR in [-1, 1] (to_network(rgb[None]) '
                 'of uint8 RGB), and mask (B or 1, H, W, 1) of 0 and 1 (1 = hole), H and W multiples '
                 f'of {GRID}; Inpainter.inpaint takes uint8 images and masks of any size')


def check_network_input(image_bgr, mask):
    """Raises InputError, naming what the network takes, unless `image_bgr` is float (B, H, W, 3)
    in [-1, 1] with H, W multiples of 8 and `mask` is (B or 1, H, W, 1) in [0, 1]."""
    image, mask = np.asarray(image_bgr), np.asarray(mask)
    if image.ndim != 4 or image.shape[-1] != 3 or 0 in image.shape:
        batch = ' (one image needs the batch axis: image[None])' if image.ndim == 3 else ''
        raise InputError(f'image_bgr has shape {image.shape}{batch}; {NETWORK_INPUT}')
    if not np.issubdtype(image.dtype, np.floating):
        raise InputError(f'image_bgr is {image.dtype}, not floats in [-1, 1]; {NETWORK_INPUT}')
    low, high = float(np.min(image)), float(np.max(image))
    if not -1 <= low <= high <= 1:  # NaN fails too
        raise InputError(f'image_bgr holds values in [{low:.4g}, {high:.4g}], not [-1, 1]; '
                         f'{NETWORK_INPUT}')
    height, width = image.shape[1:3]
    if (mask.ndim != 4 or mask.shape[-1] != 1 or mask.shape[0] not in (1, image.shape[0])
            or mask.shape[1:3] != (height, width)):
        hint = ' (a (H, W) mask: mask[None, :, :, None])' if mask.shape == (height, width) else ''
        raise InputError(f'mask has shape {mask.shape} for image_bgr {image.shape}{hint}; '
                         f'{NETWORK_INPUT}')
    if mask.size and not 0 <= float(np.min(mask)) <= float(np.max(mask)) <= 1:
        raise InputError(f'mask holds values in [{float(np.min(mask)):.4g}, '
                         f'{float(np.max(mask)):.4g}], not 0 and 1; {NETWORK_INPUT}')
    if height % GRID or width % GRID:
        raise InputError(f'image_bgr is {width}x{height} (W x H), not multiples of {GRID}; '
                         f'{NETWORK_INPUT}')


def standardize_edge(edge, shape, threshold, name='edge'):
    """An edge array (H, W[, C]) -> bool (H, W), True on a line, by `imageio.edge_lines`."""
    edge = np.asarray(edge)
    if edge.ndim not in (2, 3):
        raise InputError(f'{name}: shape {edge.shape} is not an edge image; pass (H, W)')
    if tuple(edge.shape[:2]) != tuple(shape[:2]):
        raise InputError(f'{name}: edge image is {edge.shape[1]}x{edge.shape[0]} but the image is '
                         f'{shape[1]}x{shape[0]}; give an edge image of the image\'s size')
    return edge_lines(edge, threshold, name)


class Inpainter:
    """Runs a DeepFill v2 generator on images.

    Example:
        inpainter = Inpainter.from_checkpoint('checkpoints/release_places2_256')
        result = inpainter.inpaint(image_rgb, mask)  # uint8 (H, W, 3)
    """

    def __init__(self, generator, restrict=True, precision='float32',
                 edge_threshold=EDGE_THRESHOLD):
        """Args:
            generator: an `InpaintGenerator` (edge-guided or not: `generator.guided`).
            restrict: compute only what reaches the hole (`inpaint.restricted`) where that is
                cheaper; False: always the whole network, as `predict` and `original=True` do.
            precision: 'float32', or 'bfloat16' for the convolutions (contextual attention stays
                float32; about 2x the multiply rate on CPUs with AVX512-BF16 or AMX, at some
                accuracy: see the README). A generator built with another dtype policy is
                rebuilt with this one (`generator.with_dtype`; the one given is left as it is).
            edge_threshold: a guided model's edge rule (`imageio.edge_lines`); the original's
                `inpaint.yml` has 0.6.
        """
        if generator.dtype_policy.name != dtype_policy(precision):
            generator = with_dtype(generator, dtype_policy(precision))
        self.generator = generator
        self.precision = precision
        self.edge_threshold = float(edge_threshold)
        self._forward = backends.compile_inference(generator)
        dense = lambda image, mask, *edge: self.predict_offsets(image, mask, *edge)[1]
        self.restricted = RestrictedGenerator(generator, dense) if restrict else None

    @classmethod
    def from_checkpoint(cls, path, precision='float32', **kwargs):
        """Loads a weights folder, the authors' release folder or prefix, or a training log_dir,
        building the generator at `precision`; `kwargs` as `Inpainter`'s."""
        generator, _, _ = load_models(path, with_discriminator=False, dtype=dtype_policy(precision))
        return cls(generator, precision=precision, **kwargs)

    def compiled_shapes(self):
        """How many input shapes the whole network has been compiled for (the restricted path's
        stages: `self.restricted.compiled_shapes()`)."""
        return self._forward.tracing_count()

    def compilations(self):
        """How many compilations this Inpainter's calls have made: the whole network's shapes,
        the restricted path's stages' and its attention steps' (those are shared by the process).
        A call that raises it spent part of its time compiling (the evaluation times it again)."""
        total = self.compiled_shapes()
        if self.restricted is not None:
            total += self.restricted.compiled_shapes() + hole_attention.compiled_shapes()
        return total

    def predict(self, image_bgr, mask, edge=None):
        """Runs the network as the original graph does (no padding, no compositing).

        Args:
            image_bgr: float (B, H, W, 3), BGR in [-1, 1]: `to_network(rgb_uint8[None])`;
                H, W multiples of 8.
            mask: (B or 1, H, W, 1) of 0 and 1, 1 = hole: `holes[None, :, :, None]`.
            edge: guided models only: float32 (B or 1, H, W, 1) edge lines, 1 = line (the
                network keeps those inside the hole); None = no lines.
        Returns:
            x_stage1, x_stage2 (B, H, W, 3) and offset_flow (B, H/4, W/4, 3), NumPy float32.
        Raises:
            InputError: inputs of another shape, type or range (the message says what it takes);
                `inpaint` takes any image and mask.
        """
        x1, x2, offsets = self.predict_offsets(image_bgr, mask, edge)
        return x1, x2, offset_flow(offsets, rate=2)

    def predict_offsets(self, image_bgr, mask, edge=None):
        """As `predict`, with the attention offsets (B, H/8, W/8, 2) instead of their picture."""
        check_network_input(image_bgr, mask)
        image_bgr, mask = np.asarray(image_bgr, np.float32), np.asarray(mask, np.float32)
        if edge is not None and not self.generator.guided:
            raise InputError(NOT_GUIDED)
        if self.generator.guided:  # one compiled signature: no lines are zeros
            edge = (np.zeros_like(image_bgr[..., :1]) if edge is None
                    else np.asarray(edge, np.float32))
        inputs = (image_bgr, mask) + ((edge,) if self.generator.guided else ())
        x1, x2, offsets = self._forward(*inputs)
        return x1.astype(np.float32), x2.astype(np.float32), offsets

    def inpaint(self, image, mask, edge=None, original=False):
        """Inpaints one image.

        Args:
            image: RGB (H, W, 3), gray (H, W) or RGBA (H, W, 4); uint8, or uint16 (the network
                sees it scaled to 8 bits).
            mask: (H, W) or (H, W, C); bool, 0/1, 0/255 or colour strokes on black, hole = True /
                1 / 255 / painted (see `imageio.mask_holes`).
            edge: guided models only: the edge image (H, W) or (H, W, C), lines by
                `imageio.edge_lines` (bool, or white lines on black); None = no lines.
            original: reproduce the authors' test.py (for a guided model, their server graph
                with `guided=True`) exactly (see module docstring).
        Returns:
            RGB (H, W, 3) of the input's depth, or RGBA (H, W, 4) with the input's alpha
            unchanged for an RGBA input (`restore_format`); with `original`, cropped to a multiple
            of 8. A grey input (gray, or three equal channels) comes back grey: three equal
            channels. A uint16 input keeps its own values outside the hole.
        Raises:
            InputError: bad input (one line naming it), or an edge for a model that is not guided.
        """
        edges = None if edge is None else [edge]
        return self.inpaint_batch([image], [mask], edges, original=original)[0]

    def inpaint_batch(self, images, masks, edges=None, original=False, batch_size=8):
        """Inpaints a list of images, each with its own mask (the original: the first mask) and,
        for a guided model, its own edge image.

        Images of the same size are run together, `batch_size` at a time.
        Args:
            edges: None (no lines), or one edge image (or None) per image; see `inpaint`.
        Returns:
            list of images in the input order, each in its input's format (see `inpaint`).
        """
        if len(images) != len(masks):
            raise InputError(f'{len(images)} images but {len(masks)} masks; give one mask per image')
        given = images
        edges = [None] * len(images) if edges is None else list(edges)
        if len(edges) != len(images):
            raise InputError(f'{len(images)} images but {len(edges)} edge images; give one per '
                             f'image (None where an image has none)')
        if not self.generator.guided and any(edge is not None for edge in edges):
            raise InputError(NOT_GUIDED)
        images = [standardize_image(im, f'image {i}') for i, im in enumerate(images)]
        masks = [standardize_mask(m, im.shape, f'mask {i}') for i, (im, m) in enumerate(zip(images, masks))]
        edges = [np.zeros(im.shape[:2], bool) if e is None
                 else standardize_edge(e, im.shape, self.edge_threshold, f'edge {i}')
                 for i, (im, e) in enumerate(zip(images, edges))]
        if original:
            masks = [masks[0][:im.shape[0], :im.shape[1]] if masks[0].shape == im.shape[:2]
                     else _shape_error(im, masks[0]) for im in images]
        results = [None] * len(images)
        groups = {}
        for i, image in enumerate(images):
            groups.setdefault(image.shape, []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                run = self._inpaint_original if original else self._inpaint_padded
                outputs = run(*(np.stack([items[i] for i in chunk]) for items in (images, masks, edges)))
                for i, output in zip(chunk, outputs):
                    results[i] = restore_format(output, masks[i], given[i], original)
        return results

    def _edge_input(self, edges):
        """Bool edge lines (B, H, W) -> the network's edge input (B, H, W, 1), or nothing for a
        model that is not guided."""
        return (edges[..., None].astype(np.float32),) if self.generator.guided else ()

    def _inpaint_padded(self, images, masks, edges):
        """(B, H, W, 3) uint8, (B, H, W) bool x 2 -> (B, H, W, 3) uint8; known pixels untouched."""
        height, width = images.shape[1:3]
        if not masks.any():
            return images.copy()
        pad_h, pad_w = padded_size(height) - height, padded_size(width) - width
        padded = np.pad(images, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)], mode='edge')
        padded_mask = np.pad(masks, [(0, 0), (0, pad_h), (0, pad_w)])  # padding is known
        edge = self._edge_input(np.pad(edges, [(0, 0), (0, pad_h), (0, pad_w)]))  # no lines there
        if self.restricted is None:
            _, x2, _ = self.predict_offsets(to_network(padded), padded_mask[..., None].astype(np.float32),
                                            *edge)
        else:
            x2 = self.restricted(to_network(padded), padded_mask, *edge)
        filled = grey_if_grey(images, from_network(x2[:, :height, :width], rounding=True))
        return np.where(masks[..., None], filled, images)

    def _inpaint_original(self, images, masks, edges):
        """The authors' test.py (guided: their server graph with `guided=True`): crop to a multiple
        of 8, float composite, saturate_cast."""
        height, width = images.shape[1] // GRID * GRID, images.shape[2] // GRID * GRID
        if height == 0 or width == 0:
            raise InputError(f'image of {images.shape[2]}x{images.shape[1]} is smaller than '
                             f'{GRID}x{GRID}; the original crops it to nothing')
        x = to_network(images[:, :height, :width])
        mask = masks[:1, :height, :width, None].astype(np.float32)  # the first mask, as original
        edge = self._edge_input(edges[:, :height, :width])  # each image's own, as original
        _, x2, _ = self.predict_offsets(x, mask, *edge)  # the generator zeroes the holes of its input
        return from_network(composite(x, x2, mask))


def _shape_error(image, mask):
    raise InputError(f'original mode shares the first mask ({mask.shape[1]}x{mask.shape[0]}) '
                     f'across the batch, but an image is {image.shape[1]}x{image.shape[0]}')
