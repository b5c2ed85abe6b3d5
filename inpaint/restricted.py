"""The generator computed only where it reaches the hole: the inpainted pixels, with less work.

An inpainted image keeps its known pixels, so only `x_stage2` at the hole matters. Each stage of
`InpaintGenerator` is run on the part of the image that reaches those pixels, as derived from the
layer stack (`InpaintGenerator.*_reach`):
- stage 1, whose output is used inside the hole only, on a box around the hole plus its
  receptive field;
- the dilated-conv branch on a box around what the layers after the attention read;
- the attention branch on the whole image (every hole-free patch is a key), then contextual
  attention for the needed queries only (`hole_attention`);
- the layers after the attention on a box around the hole plus their receptive field.
Boxes are aligned to 8 pixels (so strided convs and x2 upsampling see the same grid as on the
whole image) and bucketed in size (few compiled shapes). A box's zero padding only reaches
outputs outside the needed region, so the hole's pixels equal the whole network's to float
rounding; `x_stage2` outside the hole does not, and no offsets are produced.

When the estimated work is not clearly below the whole network's (small images, holes covering
most of the image), the whole network runs instead; when the needed queries are most of them,
the cropped stages run with the dense attention.
"""
import numpy as np
from keras import ops

from inpaint import backends
from inpaint.generator import composite
from inpaint.hole_attention import attend, plan_attention
from inpaint.layers import BlockedAttention, conv_reach

ALIGN = 8  # box corners and sizes: multiples of the generator's total stride
# The restricted path runs when its estimated multiply-adds are below this share of the whole
# network's, and the restricted attention when its plan needs below this share of the dense
# attention's (its gathers cost more per multiply-add); see benchmarks/hole_attention.py.
COST_LIMIT = 0.75
ATTENTION_LIMIT = 0.6


class RestrictedGenerator:
    """Runs an `InpaintGenerator` for `x_stage2` at the holes only.

    Example:
        restricted = RestrictedGenerator(generator, dense)
        x2 = restricted(image_bgr, holes)  # exact where holes is True

    Args:
        generator: the `InpaintGenerator`.
        dense: (image, mask) -> the whole network's x_stage2 as NumPy, run where restricting
            does not pay (the `Inpainter`'s compiled network).
        cost_limit: restrict when the estimated work is below this share of the whole network's.
    """

    def __init__(self, generator, dense, cost_limit=COST_LIMIT):
        self.generator = generator
        self.cost_limit = cost_limit
        self.last_path = None  # 'restricted' or 'dense', for tests and benchmarks
        self.last_work = None  # multiply-adds: {'dense': ..., 'restricted': ... or None}
        compile_ = lambda fn: backends.compile_function(fn, generator.variables)
        self._dense = dense
        self._coarse = compile_(generator.coarse)
        self._hallucinate = compile_(generator.hallucinate)
        self._features = compile_(lambda x, mask: _attention_inputs(generator, x, mask))
        self._decode = compile_(generator.decode)
        attention = generator.contextual_attention
        self._dense_attention = compile_(
            lambda *grids: BlockedAttention(attention, *_flat(grids), tuple(grids[0].shape[1:3]))
            .run()[1])
        self._flops = _FlopCounter(generator)

    def __call__(self, image, holes):
        """x_stage2 where `holes`.

        Args:
            image: float32 NumPy (B, H, W, 3), BGR in [-1, 1]; H, W multiples of 8.
            holes: bool NumPy (B, H, W).
        Returns:
            float32 NumPy (B, H, W, 3), equal to the whole network's `x_stage2` at the holes.
        """
        generator, attention = self.generator, self.generator.contextual_attention
        size = holes.shape[1:]
        mask = holes[..., None].astype(np.float32)
        union = holes.any(axis=0)
        coarse_box = _box(generator.stage1_reach(union), size)
        decode_needed = generator.attention_reach(union)  # (H/4, W/4)
        decode_box = _box(np.kron(decode_needed, np.ones((4, 4), bool)), size)
        hallucination_box = _box(generator.hallucination_reach(decode_needed, size), size,
                                 inside=decode_box)
        queries = [attention.paste_reach(generator.attention_reach(hole)) for hole in holes]
        estimate = self._flops.estimate(size, coarse_box, hallucination_box, decode_box)
        share = np.mean([needed.mean() * _clear_share(hole) for needed, hole in zip(queries, holes)])
        self.last_work = {'dense': len(holes) * estimate['dense'],
                          'restricted': len(holes) * (estimate['restricted_convs']
                                                      + share * estimate['attention'])}
        if self.last_work['restricted'] >= self.cost_limit * self.last_work['dense']:
            self.last_path = 'dense'
            return self._dense(image, mask)

        incomplete = image * (np.float32(1.0) - mask)
        x = incomplete.copy()
        rows, cols = _slices(coarse_box)
        x_stage1 = ops.convert_to_numpy(self._coarse(incomplete[:, rows, cols], mask[:, rows, cols]))
        x[:, rows, cols] = composite(incomplete[:, rows, cols], x_stage1, mask[:, rows, cols])

        grids = self._features(x, mask)  # fp, wn, mm, raw, each (B, h, w, .)
        fp, wn, mm, raw = _flat(grids)
        plans = [plan_attention(needed, valid, fuse=attention.fuse,
                                chunk_bytes=attention.block_bytes)
                 for needed, valid in zip(queries, ops.convert_to_numpy(mm))]
        share = np.mean([plan.cost(attention.ksize, attention.rate) for plan in plans])
        if share < ATTENTION_LIMIT:
            self.last_path = 'restricted'
            patches = ops.stack([attend(fp[b], wn[b], raw[b], plan, attention.softmax_scale)
                                 for b, plan in enumerate(plans)])  # (B, hw, 4r*r*C)
        else:  # the needed queries are most of them: all, as the dense attention's blocks
            self.last_path = 'restricted convolutions, dense attention'
            share, patches = 1.0, self._dense_attention(*grids)
        self.last_work['restricted'] = len(holes) * (estimate['restricted_convs']
                                                     + share * estimate['attention'])
        attended = attention.paste(patches, plans[0].size)  # (B, H/4, W/4, C)

        rows, cols = _slices(hallucination_box)
        hallucinated = self._hallucinate(x[:, rows, cols])  # (B, h/4, w/4, 2cnum)
        (top, bottom, left, right), (h_top, _, h_left, _) = decode_box, hallucination_box
        hallucinated = hallucinated[:, (top - h_top) // 4:(bottom - h_top) // 4,
                                    (left - h_left) // 4:(right - h_left) // 4]
        attended = attended[:, top // 4:bottom // 4, left // 4:right // 4]
        x_stage2 = np.zeros(image.shape, np.float32)
        x_stage2[:, top:bottom, left:right] = ops.convert_to_numpy(
            self._decode(hallucinated, attended))
        return x_stage2

    def compiled_shapes(self):
        """How many input shapes the restricted path's stages have been compiled for."""
        return sum(fn.tracing_count() for fn in (self._coarse, self._hallucinate, self._features,
                                                  self._dense_attention, self._decode))


def _attention_inputs(generator, x, mask):
    """Stage-2 input (B, H, W, 3) and mask -> the attention's inputs (`ContextualAttention.prepare`)
    as grids: fp, wn (B, h, w, k*k*C), mm (B|1, h, w, 1), raw (B, h, w, 4r*r*C), h = H/8."""
    attention = generator.contextual_attention
    features = ops.cast(generator.attention_features(x), attention.compute_dtype)
    inputs = attention.prepare(features, features, generator.attention_mask(mask, features))
    h, w = inputs.small
    return [ops.reshape(v, (v.shape[0], h, w, -1))
            for v in (inputs.fp, inputs.wn, ops.swapaxes(inputs.mm, 1, 2), inputs.raw)]


def _flat(grids):
    """fp, wn, mm, raw grids -> the attention's fp, wn, raw (B, hw, .) and mm (B|1, 1, hw)."""
    fp, wn, mm, raw = (ops.reshape(v, (v.shape[0], -1, v.shape[-1])) for v in grids)
    return fp, wn, ops.swapaxes(mm, 1, 2), raw


def _clear_share(hole, cell=8):
    """About the share of hole-free keys: cells of `cell` px whose 3x3 neighbourhood has no hole
    pixel (an estimate, for choosing a path; the plan uses the network's own key mask)."""
    h, w = hole.shape[0] // cell, hole.shape[1] // cell
    cells = hole[:h * cell, :w * cell].reshape(h, cell, w, cell).any(axis=(1, 3))
    return 1.0 - conv_reach(cells, cells.shape, 3).mean()


def _box(needed, size, inside=None):
    """The aligned, size-bucketed box (top, bottom, left, right) around the True pixels of a bool
    (H, W) map (and around the box `inside`), within an image of `size`."""
    rows, cols = np.flatnonzero(needed.any(axis=1)), np.flatnonzero(needed.any(axis=0))
    spans = [[rows.min(), rows.max() + 1], [cols.min(), cols.max() + 1]]
    if inside is not None:
        spans = [[min(spans[0][0], inside[0]), max(spans[0][1], inside[1])],
                 [min(spans[1][0], inside[2]), max(spans[1][1], inside[3])]]
    box = []
    for (start, stop), limit in zip(spans, size):
        start, stop = start // ALIGN * ALIGN, -(-stop // ALIGN) * ALIGN
        length = min(_bucket(stop - start), limit)
        start = min(start, limit - length)  # grow towards the far end, then back inside
        box += [start, start + length]
    return tuple(int(v) for v in box)


def _bucket(n):
    """n (a multiple of ALIGN) rounded up to 8 sizes per octave, a multiple of ALIGN."""
    step = max(ALIGN, 2 ** max(int(n - 1).bit_length() - 4, 0))
    return -(-n // step) * step


def _slices(box):
    top, bottom, left, right = box
    return slice(top, bottom), slice(left, right)


class _FlopCounter:
    """Multiply-adds of the generator's stages per output pixel, for choosing a path."""

    def __init__(self, generator):
        self.generator = generator
        attention = generator.contextual_attention
        self.feature_width = generator.attention_in[-1].filters // 2
        self.attention_width = attention.ksize ** 2 + 4 * attention.rate ** 2

    def estimate(self, size, coarse_box, hallucination_box, decode_box):
        """{'dense': whole network, 'restricted_convs': the convolutions of the restricted path,
        'attention': the dense attention's scores and paste}, in multiply-adds."""
        g = self.generator
        area = lambda box: (box[1] - box[0]) * (box[3] - box[2])
        convs = lambda layers, pixels: pixels * _per_pixel(layers)
        full = size[0] * size[1]
        attention = (full / 64) ** 2 * self.attention_width * self.feature_width
        dense = (convs(g.stage1, full) + convs(g.hallucination, full)
                 + convs(g.attention_in, full) + convs(g.attention_out + g.stage2_out, full)
                 + attention)
        restricted = (convs(g.stage1, area(coarse_box))
                      + convs(g.hallucination, area(hallucination_box))
                      + convs(g.attention_in, full)
                      + convs(g.attention_out + g.stage2_out, area(decode_box)))
        return {'dense': dense, 'restricted_convs': restricted, 'attention': attention}


def _per_pixel(layers):
    """Multiply-adds of a layer sequence per input pixel (strides and x2 upsampling counted)."""
    total, scale = 0.0, 1.0  # scale: output pixels per input pixel so far
    for layer in layers:
        conv = getattr(layer, 'conv', layer)
        if conv is not layer:
            scale *= 4  # x2 upsampling before the conv
        scale /= conv.strides ** 2
        total += scale * conv.kernel_size ** 2 * int(conv.kernel.shape[2]) * conv.filters
    return total
