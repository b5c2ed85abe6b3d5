"""The exportable model: the whole inference pipeline, uint8 in and uint8 out, in `keras.ops`.

    inputs   image  uint8 (B, H, W, 3), RGB
             mask   uint8 (B, H, W, C), C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA);
                    holes by the project's one rule, per image (`imageio.mask_holes`; README
                    "Masks: one rule"): 0/1 and 0/255 masks, strokes of any colour on black,
                    paint on a transparent layer (an alpha that varies: hole where alpha > 0)
             edge   edge-guided generators only: uint8 (B, H, W, C), C in 1..4 as decoded; lines
                    by the one edge rule, per image (`imageio.edge_lines`: the largest colour
                    channel, or a varying alpha, / 255 > edge_threshold; 0/1 images scaled to
                    0/255); only the lines inside the hole guide the fill
    outputs  inpainted  uint8 (B, H, W, 3), RGB: hole pixels filled, the others untouched; a grey
                        image (three equal channels) gets a grey fill (`inference.grey_if_grey`)
             x_stage2   float32 (B, H, W, 3): the network's refined output before compositing,
                        BGR in [-1, 1] as the original graph's (on the padded size's crop)

That is `Inpainter(generator, restrict=False).inpaint` as one graph: the same edge padding to
`inference.padded_size` (bucketed multiples of 8; padding only to the next multiple of 8 changed
the fill, by up to 246 levels at 300x200 on the golden weights), rounding, grey rule and
compositing (for a guided generator `inpaint(image, mask, edge)`, the edge padded with no lines).
`inpaint.export_formats` writes it as a SavedModel, ONNX or TFLite file. File decoding stays
outside: a client sends decoded pixels, RGB, and the mask's (and edge's) channels as decoded
(uint8: a 16-bit mask or edge must be scaled to 8 bits first). H, W and C may be known only when
the graph runs (a SavedModel for any size).

Why the rules have twins: the library keeps its mask, edge, grey and padding rules in NumPy
(`imageio.mask_holes`, `imageio.edge_lines`, `inference.grey_if_grey`, `inference.padded_size`). Masks are read where no
Keras backend is loaded (the evaluation of the classical baselines, the server's request
decoding, the batch's checks), and on the host the NumPy rules cost microseconds, where a backend
call per image would cost a dispatch and, on TensorFlow, start the runtime. So the graph twins
below are derived from the NumPy rules' own pieces (`imageio.mask_scale`,
`imageio.above_edge_threshold`, `inference.LUMA`, the sizes `inference.padded_size` returns), not
restated, and `tests/test_serving.py` checks each
twin against its rule on every case it distinguishes.
"""
import keras
import numpy as np
from keras import ops

from inpaint import pixels
from inpaint.generator import NOT_GUIDED, composite
from inpaint.imageio import EDGE_THRESHOLD, above_edge_threshold, mask_scale
from inpaint.inference import LUMA, LUMA_SCALE, padded_size as library_padded_size

# Every size `inference.padded_size` returns up to sides of 2**20 pixels, ascending: the padded
# size of n is the first one >= n (padded_size is increasing and returns each of these unchanged).
_SIZES = [library_padded_size(1)]
while _SIZES[-1] < 2 ** 20:
    _SIZES.append(library_padded_size(_SIZES[-1] + 1))
PADDED_SIZES = np.array(_SIZES, np.int32)


class ServingModel(keras.Model):
    """A generator inside the inference pipeline (see the module docstring).

    Args:
        generator: an `InpaintGenerator` (edge-guided or not).
        edge_threshold: a guided generator's edge rule (`imageio.edge_lines`); 0.6 as the
            original's `inpaint.yml`.
    Call args:
        image: uint8 (B, H, W, 3) RGB.
        mask: uint8 (B, H, W, C), C in 1..4, holes by the one mask rule.
        edge: guided generators only: uint8 (B, H, W, C), C in 1..4, lines by the one edge rule;
            None = no lines.
    Returns:
        {'inpainted': uint8 (B, H, W, 3) RGB, 'x_stage2': float32 (B, H, W, 3) BGR in [-1, 1]}.
    """

    def __init__(self, generator, edge_threshold=EDGE_THRESHOLD, name='deepfill_v2_serving',
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.generator = generator
        self.edge_threshold = float(edge_threshold)

    def call(self, image, mask, edge=None):
        if edge is not None and not self.generator.guided:
            raise ValueError(NOT_GUIDED)
        height, width = ops.shape(image)[1], ops.shape(image)[2]
        hole = mask_holes(mask)  # (B, H, W, 1)
        # Edge padding to Inpainter's padded size: repeat the last row/column.
        rows = ops.minimum(ops.arange(padded_size(height)), height - 1)
        cols = ops.minimum(ops.arange(padded_size(width)), width - 1)
        padded = ops.take(ops.take(image, rows, axis=1), cols, axis=2)
        x = pixels.to_network(ops.flip(ops.cast(padded, 'float32'), axis=-1))  # BGR [-1, 1]
        guide = ()
        if self.generator.guided:  # no edge: no lines (zeros), as Inpainter
            lines = (ops.zeros_like(hole) if edge is None
                     else edge_lines(edge, self.edge_threshold))  # (B, H, W, 1)
            guide = (_zero_padded(lines, rows, cols, height, width),)  # no lines in the padding
        _, x_stage2, _ = self.generator(x, _zero_padded(hole, rows, cols, height, width), *guide)
        x_stage2 = x_stage2[:, :height, :width, :]
        # BGR [-1, 1] -> RGB uint8 values with rounding (inference.from_network(rounding=True)).
        filled = ops.flip(ops.clip(ops.round(pixels.from_network(x_stage2)), 0, 255), axis=-1)
        filled = grey_if_grey(ops.cast(image, 'float32'), filled)
        # Exact in float32 (integers, hole 0 or 1); `where` on uint8 is no TFLite built-in.
        inpainted = composite(ops.cast(image, 'float32'), filled, hole)
        return {'inpainted': ops.cast(inpainted, 'uint8'), 'x_stage2': x_stage2}


def _zero_padded(values, rows, cols, height, width):
    """(B, H, W, 1) -> the padded size (B, len(rows), len(cols), 1): the rows and columns past
    the image are zeros (no hole: the padding is known; no edge lines)."""
    padded = ops.take(ops.take(values, rows, axis=1), cols, axis=2)
    padded = padded * ops.cast((ops.arange(ops.shape(rows)[0]) < height)[None, :, None, None],
                               'float32')
    return padded * ops.cast((ops.arange(ops.shape(cols)[0]) < width)[None, None, :, None],
                             'float32')


# The NumPy rules' two scales of full ink for uint8: a 0/1 image (top <= 1) or a 0..255 one.
_UNIT, _BYTE = mask_scale(1, np.uint8), mask_scale(255, np.uint8)


def _ink(array):
    """What the mask and edge rules test (`imageio._ink`), per image: uint8 (B, H, W, C), C in
    1..4 -> (value float32 (B, H, W, 1), painted bool (B, 1, 1, 1), the scale of full ink of the
    value (B, 1, 1, 1)): value is a painted layer's alpha (an alpha channel that varies) or
    else the largest colour channel. C may be known only when the graph runs."""
    array = ops.cast(array, 'float32')
    channels = ops.shape(array)[-1]
    # The last channel is alpha when C is 2 or 4; flags, not slices, so C may be symbolic.
    has_alpha = ops.logical_or(ops.equal(channels, 2), ops.equal(channels, 4))
    is_alpha = ops.cast(ops.logical_and(has_alpha, ops.equal(ops.arange(channels), channels - 1)),
                        'float32')  # (C,)
    colour = ops.max(array * (1.0 - is_alpha), axis=-1, keepdims=True)  # values >= 0
    alpha = ops.sum(array * is_alpha, axis=-1, keepdims=True)  # 0 without an alpha channel
    painted = ops.greater(ops.max(alpha, axis=(1, 2, 3), keepdims=True),
                          ops.min(alpha, axis=(1, 2, 3), keepdims=True))  # alpha that varies
    value = ops.where(painted, alpha, colour)
    top = ops.max(value, axis=(1, 2, 3), keepdims=True)  # (B, 1, 1, 1)
    return value, painted, ops.where(ops.less_equal(top, _UNIT), float(_UNIT), float(_BYTE))


def mask_holes(mask):
    """`imageio.mask_holes` per image: uint8 (B, H, W, C), C in 1..4 -> float32 (B, H, W, 1),
    1 = hole. C may be known only when the graph runs."""
    value, painted, scale = _ink(mask)
    return ops.cast(ops.where(painted, ops.greater(value, 0.0), ops.greater(value, scale / 2)),
                    'float32')


def edge_lines(edge, threshold=EDGE_THRESHOLD):
    """`imageio.edge_lines` per image: uint8 (B, H, W, C), C in 1..4 -> float32 (B, H, W, 1),
    1 on a line: the value brought to 0..255 (`* 255 / scale`, in float32 as the NumPy rule)
    through `imageio.above_edge_threshold` itself. C may be known only when the graph runs."""
    value, _, scale = _ink(edge)
    factor = ops.where(ops.equal(scale, float(_UNIT)), np.float32(255 / _UNIT),
                       np.float32(255 / _BYTE))
    return ops.cast(above_edge_threshold(value * factor, threshold), 'float32')


def grey_if_grey(image, filled):
    """`inference.grey_if_grey`: float32 RGB (B, H, W, 3) input and fill (integer values) -> the
    fill, replaced by its luminance (rounded half up) where the input's channels are equal."""
    grey = ops.all(ops.equal(image, image[..., :1]), axis=(1, 2, 3), keepdims=True)  # (B, 1, 1, 1)
    weighted = ops.sum(filled * LUMA, axis=-1, keepdims=True)  # exact integers in float32
    luma = ops.floor((weighted + LUMA_SCALE / 2) / LUMA_SCALE)
    return ops.where(grey, ops.repeat(luma, 3, axis=-1), filled)


def padded_size(n):
    """`inference.padded_size` for a side `n` known when tracing (int) or only when the graph runs
    (int32 scalar tensor, at most 2**20)."""
    if isinstance(n, int):
        return library_padded_size(n)
    sizes = ops.convert_to_tensor(PADDED_SIZES)
    return ops.take(sizes, ops.sum(ops.cast(ops.less(sizes, n), 'int32')))  # the first >= n
