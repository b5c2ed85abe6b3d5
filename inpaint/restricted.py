"""The generator computed only where it reaches the hole: the inpainted pixels, with less work.

An inpainted image keeps its known pixels, so only `x_stage2` at the hole matters. Each stage of
`InpaintGenerator` is run on the part of the image that reaches those pixels, as derived from the
layer stack (`InpaintGenerator.*_reach`):
- stage 1, whose output is used inside the hole only, on a box around the hole plus its
  receptive field, and its upsampling end (`coarse_decode`) on the smaller box it needs;
- the dilated-conv branch on a box around what the layers after the attention read;
- the attention branch on the whole image (every hole-free patch is a key), then contextual
  attention for the needed queries only (`hole_attention`);
- the layers after the attention on a box around the hole plus their receptive field.
Boxes are aligned to 8 pixels (so strided convs and x2 upsampling see the same grid as on the
whole image) and bucketed in size (few compiled shapes). A box's zero padding only reaches
outputs outside the needed region, so the hole's pixels equal the whole network's to float
rounding; `x_stage2` outside the hole does not, and no offsets are produced.

Edge-guided generators work unchanged: the edge is one more input channel of stage 1's first
conv, so it has the image's reach and is cropped to stage 1's box with it.

When the estimated work is not clearly below the whole network's (small images, holes covering
most of the image), the whole network runs instead; when the needed queries are most of them,
the cropped stages run with the dense attention.
"""
import numpy as np
from keras import ops

from inpaint import backends
from inpaint.generator import GRID, composite
from inpaint.hole_attention import attend, plan_attention
from inpaint.layers import BlockedAttention, conv_reach

# The restricted path runs when its estimated multiply-adds are below this share of the whole
# network's: benchmarks/hole_attention.py measured it doing a multiply-add in 1/0.8 of the dense
# network's time up to 1024 px (more, smaller calls and gathers), so 0.7 leaves a margin. The
# restricted attention runs when its plan needs below ATTENTION_LIMIT of the dense attention's.
COST_LIMIT = 0.7
ATTENTION_LIMIT = 0.6


class RestrictedGenerator:
    """Runs an `InpaintGenerator` for `x_stage2` at the holes only.

    Example:
        restricted = RestrictedGenerator(generator, dense)
        x2 = restricted(image_bgr, holes)  # exact where holes is True

    Args:
        generator: the `InpaintGenerator`.
        dense: (image, mask[, edge]) -> the whole network's x_stage2 as NumPy, run where
            restricting does not pay (the `Inpainter`'s compiled network).
        cost_limit: restrict when the estimated work is below this share of the whole network's.
    """

    def __init__(self, generator, dense, cost_limit=COST_LIMIT):
        self.generator = generator
        self.cost_limit = cost_limit
        self.last_path = None  # 'restricted' or 'dense', for tests and benchmarks
        self.last_work = None  # multiply-adds: {'dense': ..., 'restricted': ... or None}
        compile_ = lambda fn: backends.compile_function(fn, generator.variables)
        self._dense = dense
        self._coarse_features = compile_(generator.coarse_features)
        self._coarse_decode = compile_(generator.coarse_decode)
        self._hallucinate = compile_(generator.hallucinate)
        self._features = compile_(lambda x, mask: _attention_inputs(generator, x, mask))
        self._decode = compile_(generator.decode)
        attention = generator.contextual_attention
        self._dense_attention = compile_(
            lambda *grids: paste_patches(attention, dense_patches(attention, grids)))
        self._paste = compile_(lambda *grids: paste_patches(attention, ops.stack(grids)))
        self._flops = _FlopCounter(generator)

    def __call__(self, image, holes, *edge):
        """x_stage2 where `holes`.

        Args:
            image: float32 NumPy (B, H, W, 3), BGR in [-1, 1]; H, W multiples of 8.
            holes: bool NumPy (B, H, W).
            edge: guided generators only: float32 NumPy (B, H, W, 1) edge lines.
        Returns:
            float32 NumPy (B, H, W, 3), equal to the whole network's `x_stage2` at the holes.
        """
        mask = holes[..., None].astype(np.float32)
        boxes = self._boxes(holes)
        estimate = self._flops.estimate(holes.shape[1:], boxes)
        # The batch's multiply-adds when the attention does `share` of the dense attention's.
        work = lambda share: len(holes) * (estimate['restricted_convs']
                                           + share * estimate['attention'])
        queries, share = None, 0.0
        if estimate['restricted_convs'] < self.cost_limit * estimate['dense']:
            queries = self._queries(holes)
            share = np.mean([needed.mean() * _clear_share(hole)
                             for needed, hole in zip(queries, holes)])
        self.last_work = {'dense': len(holes) * estimate['dense'], 'restricted': work(share)}
        if queries is None or work(share) >= self.cost_limit * self.last_work['dense']:
            self.last_path = 'dense'
            return self._dense(image, mask, *edge)
        x = self._stage2_input(image, mask, boxes, edge)
        attended, share = self._attend(x, mask, queries)
        self.last_work['restricted'] = work(share)
        return self._after_attention(x, attended, boxes)

    def _boxes(self, holes):
        """The boxes (top, bottom, left, right), in full-resolution pixels, around what reaches
        any hole of the batch: {'coarse': stage 1 to its first upsampling, 'coarse_decode': the
        rest of stage 1, 'hallucination': the dilated branch, 'decode': after the attention}.
        A box also holds the next stage's box, which reads its output.

        A box needs only the reach's extent, and the layers' reach is separable (square kernels),
        so boxes come from the holes' row and column profiles (maps GRID wide), not full maps.
        """
        generator, size = self.generator, holes.shape[1:]
        union = holes.any(axis=0)
        extents = []
        full = lambda quarter: np.repeat(quarter, 4, axis=0)[:, 0]  # (n/4, .) -> profile (n,)
        for axis, profile in enumerate((union.any(axis=1), union.any(axis=0))):
            needed = np.repeat(profile[:, None], GRID, axis=1)  # (n, GRID): one axis at a time
            coarse_decode = generator.coarse_decode_reach(needed)  # (n/4, GRID/4)
            decode = generator.attention_reach(needed)
            extents.append({
                'coarse': generator.coarse_features_reach(coarse_decode, needed.shape)[:, 0],
                'coarse_decode': full(coarse_decode),
                'hallucination': generator.hallucination_reach(decode, needed.shape)[:, 0],
                'decode': full(decode)})
        rows, cols = extents
        boxes = {name: _box(rows[name], cols[name], size) for name in rows}
        for outer, inner in (('coarse', 'coarse_decode'), ('hallucination', 'decode')):
            boxes[outer] = _enclose(boxes[outer], boxes[inner])
        return boxes

    def _queries(self, holes):
        """Each image's needed attention queries: bool (B, H/8, W/8) maps, a list."""
        attention = self.generator.contextual_attention
        return [attention.paste_reach(self.generator.attention_reach(hole)) for hole in holes]

    def _stage2_input(self, image, mask, boxes, edge=()):
        """Stage 1 on its boxes, composited: the second stage's input (B, H, W, 3) NumPy."""
        incomplete = image * (np.float32(1.0) - mask)
        x = incomplete.copy()
        rows, cols = _slices(boxes['coarse'])
        features = self._coarse_features(incomplete[:, rows, cols], mask[:, rows, cols],
                                         *(e[:, rows, cols] for e in edge))
        rows, cols = _slices(boxes['coarse_decode'])
        x_stage1 = ops.convert_to_numpy(self._coarse_decode(
            features[_inside(boxes['coarse_decode'], boxes['coarse'], 4)]))
        x[:, rows, cols] = composite(incomplete[:, rows, cols], x_stage1, mask[:, rows, cols])
        return x

    def _attend(self, x, mask, queries):
        """Contextual attention for the needed queries: (B, H/4, W/4, C), and its share of the
        dense attention's multiply-adds."""
        attention = self.generator.contextual_attention
        grids = self._features(x, mask)  # fp, wn, mm, raw, each (B, h, w, .)
        fp, wn, mm, raw = grids
        plans = [plan_attention(needed, valid, fuse=attention.fuse,
                                chunk_bytes=attention.block_bytes)
                 for needed, valid in zip(queries, ops.convert_to_numpy(mm))]
        share = np.mean([plan.cost(attention.ksize, attention.rate) for plan in plans])
        if share < ATTENTION_LIMIT:
            self.last_path = 'restricted'
            return self._paste(*[attend(fp, wn, raw, plan, attention.softmax_scale, image=b)
                                 for b, plan in enumerate(plans)]), share
        # The needed queries are most of them: all, as the dense attention's blocks.
        self.last_path = 'restricted convolutions, dense attention'
        return self._dense_attention(*grids), 1.0

    def _after_attention(self, x, attended, boxes):
        """The dilated branch and the layers after the attention on their boxes -> x_stage2
        (B, H, W, 3) NumPy, zero outside the decode box."""
        rows, cols = _slices(boxes['hallucination'])
        hallucinated = self._hallucinate(x[:, rows, cols])  # (B, h/4, w/4, 2cnum)
        hallucinated = hallucinated[_inside(boxes['decode'], boxes['hallucination'], 4)]
        attended = attended[_inside(boxes['decode'], (0, 0, 0, 0), 4)]
        x_stage2 = np.zeros(x.shape, np.float32)
        rows, cols = _slices(boxes['decode'])
        x_stage2[:, rows, cols] = ops.convert_to_numpy(self._decode(hallucinated, attended))
        return x_stage2

    def compiled_shapes(self):
        """How many input shapes the restricted path's stages have been compiled for."""
        return sum(fn.tracing_count() for fn in (
            self._coarse_features, self._coarse_decode, self._hallucinate, self._features,
            self._dense_attention, self._paste, self._decode))


def _attention_inputs(generator, x, mask):
    """Stage-2 input (B, H, W, 3) and mask -> the attention's inputs (`ContextualAttention.prepare`)
    as grids: fp, wn (B, h, w, k*k*C), mm (B|1, h, w, 1), raw (B, h, w, 4r*r*C), h = H/8."""
    attention = generator.contextual_attention
    features = ops.cast(generator.attention_features(x), attention.compute_dtype)
    inputs = attention.prepare(features, features, generator.attention_mask(mask, features))
    h, w = inputs.small
    return [ops.reshape(v, (v.shape[0], h, w, -1))
            for v in (inputs.fp, inputs.wn, ops.swapaxes(inputs.mm, 1, 2), inputs.raw)]


def dense_patches(attention, grids):
    """The dense (blocked) attention's pasted patches (B, h, w, 4r*r*C) from the grids of
    `_attention_inputs`, as the whole network computes them."""
    patches = BlockedAttention(attention, *_flat(grids), tuple(grids[0].shape[1:3])).run()[1]
    return ops.reshape(patches, tuple(grids[0].shape[:3]) + (-1,))


def paste_patches(attention, patches):
    """Pasted patches as a grid (B, h, w, 4r*r*C) -> the attention's output (B, H/4, W/4, C)."""
    batch, h, w, width = patches.shape
    return attention.paste(ops.reshape(patches, (batch, h * w, width)), (h, w))


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


def _box(rows, cols, size):
    """The aligned, size-bucketed box (top, bottom, left, right) around the True entries of the
    bool profiles rows (H,) and cols (W,), within an image of `size`."""
    box = []
    for profile, limit in zip((rows, cols), size):
        used = np.flatnonzero(profile)
        start, stop = used.min() // GRID * GRID, -(-(used.max() + 1) // GRID) * GRID
        length = min(backends.bucket(stop - start, multiple=GRID), limit)
        start = min(start, limit - length)  # grow towards the far end, then back inside
        box += [start, start + length]
    return tuple(int(v) for v in box)


def _enclose(outer, inner):
    """The smallest box holding both boxes (top, bottom, left, right)."""
    return (min(outer[0], inner[0]), max(outer[1], inner[1]),
            min(outer[2], inner[2]), max(outer[3], inner[3]))


def _slices(box):
    top, bottom, left, right = box
    return slice(top, bottom), slice(left, right)


def _inside(box, outer, scale):
    """Slices (batch, rows, columns) of `box` in a (B, h, w, C) array covering the box `outer`,
    both boxes in full-resolution pixels, the array at 1/scale of them."""
    return (slice(None), slice((box[0] - outer[0]) // scale, (box[1] - outer[0]) // scale),
            slice((box[2] - outer[2]) // scale, (box[3] - outer[2]) // scale))


class _FlopCounter:
    """Multiply-adds of the generator's stages per output pixel, for choosing a path."""

    def __init__(self, generator):
        self.generator = generator
        attention = generator.contextual_attention
        self.feature_width = generator.attention_in[-1].filters // 2
        self.attention_width = attention.ksize ** 2 + 4 * attention.rate ** 2

    def estimate(self, size, boxes):
        """{'dense': whole network, 'restricted_convs': the convolutions of the restricted path on
        `boxes` (`RestrictedGenerator._boxes`), 'attention': the dense attention's scores and
        paste}, in multiply-adds."""
        g = self.generator
        area = lambda box: (box[1] - box[0]) * (box[3] - box[2])
        convs = lambda layers, pixels: pixels * _per_pixel(layers)
        full = size[0] * size[1]
        attention = (full / 64) ** 2 * self.attention_width * self.feature_width
        dense = (convs(g.stage1, full) + convs(g.hallucination, full)
                 + convs(g.attention_in, full) + convs(g.attention_out + g.stage2_out, full / 16)
                 + attention)
        restricted = (convs(g.coarse_feature_layers, area(boxes['coarse']))
                      + convs(g.coarse_decode_layers, area(boxes['coarse_decode']) / 16)
                      + convs(g.hallucination, area(boxes['hallucination']))
                      + convs(g.attention_in, full)
                      + convs(g.attention_out + g.stage2_out, area(boxes['decode']) / 16))
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
