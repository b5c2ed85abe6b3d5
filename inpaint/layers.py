"""Keras layers of DeepFill v2: gated convolution, gated x2 upsampling, contextual attention and
spectral-normalized convolution, each computing exactly what the authors' TF1 code computes.

Written in `keras.ops` only, so the same layers and weights run on TensorFlow, JAX and PyTorch.
All tensors are NHWC float32. Callers compile once per input shape, so sizes are normally static;
unknown sizes (a TensorFlow SavedModel for any image size) work too, with contextual attention in
one block. Resizing follows TensorFlow's align-corners kernels (the original's
`resize(..., align_corners=True)`): the source indices are computed exactly as TensorFlow computes
them (in NumPy when the sizes are known) and gathered with `ops.take`.
"""
import collections

import keras
import numpy as np
from keras import ops

_ACTIVATIONS = {'elu': ops.elu, 'relu': ops.relu, None: None}


def align_corners_indices(size_in, size_out):
    """Source rows of TensorFlow's align-corners nearest resize: `roundf(i * scale)` in float32.

    `scale = (in - 1) / (out - 1)` as a float32 (0 when out == 1), `roundf` rounds half away from
    zero, and the index is clipped to `in - 1`, as `ResizeNearestNeighbor(align_corners=True)`.

    Returns:
        int32 NumPy (size_out,).
    """
    scale = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
    position = np.arange(size_out, dtype=np.float32) * scale
    index = np.floor(position + np.float32(0.5)).astype(np.int64)  # roundf for non-negatives
    return np.minimum(index, size_in - 1).astype(np.int32)


def _align_corners_indices_op(size_in, size_out):
    """`align_corners_indices` for sizes known only at run time (int32 scalars), same float32 steps."""
    size_in, size_out = ops.cast(size_in, 'int32'), ops.cast(size_out, 'int32')
    scale = ops.where(size_out > 1, ops.cast(size_in - 1, 'float32')
                      / ops.cast(ops.maximum(size_out - 1, 1), 'float32'), 0.0)
    position = ops.cast(ops.arange(size_out), 'float32') * scale
    index = ops.cast(ops.floor(position + 0.5), 'int32')
    return ops.minimum(index, size_in - 1)


def resize_nearest(x, size):
    """Nearest-neighbour resize with `align_corners=True` (source index `round(i*(in-1)/(out-1))`).

    Args:
        x: (B, H, W, C).
        size: (out_h, out_w), Python ints (or int32 scalars when the sizes are unknown).
    Returns:
        (B, out_h, out_w, C).
    """
    height, width = spatial_shape(x)
    static = all(isinstance(n, int) for n in (height, width, *size))
    if static and (height, width) == tuple(size):
        return x
    indices = align_corners_indices if static else _align_corners_indices_op
    x = ops.take(x, indices(height, size[0]), axis=1)
    return ops.take(x, indices(width, size[1]), axis=2)


def conv_reach(needed, input_size, kernel, stride=1, dilation=1):
    """Input pixels that a 'SAME' conv reads for its needed outputs: bool NumPy (h, w) -> (H, W).

    Output i reads inputs `i * stride - pad + tap * dilation`, `pad` the smaller half of
    TensorFlow's 'SAME' padding, as the conv itself.
    """
    span = dilation * (kernel - 1) + 1
    for axis in (0, 1):
        rows = np.moveaxis(needed, axis, 0)  # (h, other)
        size_in, size_out = input_size[axis], rows.shape[0]
        pad = max((size_out - 1) * stride + span - size_in, 0) // 2
        reach = np.zeros((size_in,) + rows.shape[1:], bool)
        for tap in range(kernel):
            start = tap * dilation - pad  # output i reads input start + i * stride
            first = max(0, -(start // stride))  # the first i with start + i * stride >= 0
            stop = min(size_out, (size_in - 1 - start) // stride + 1)
            if stop > first:
                reach[start + first * stride:start + (stop - 1) * stride + 1:stride] |= rows[first:stop]
        needed = np.moveaxis(reach, 0, axis)
    return needed


def dim(x, axis):
    """Size of `x` along `axis`: a Python int when known, else an int32 scalar."""
    size = x.shape[axis]
    return int(size) if size is not None else ops.shape(x)[axis]


def spatial_shape(x):
    """(H, W) of an NHWC tensor: Python ints when known, else int32 scalars."""
    return dim(x, 1), dim(x, 2)


def extract_patches(x, size, stride):
    """`tf.image.extract_patches` with 'SAME' padding: (B, H, W, C) -> (B, h, w, size*size*C).

    Patch values are ordered (row, column, channel), as TensorFlow's; zeros outside the image.
    h = ceil(H / stride), w = ceil(W / stride). Sizes unknown until run time must be multiples of
    `stride` (then the padding, `size - stride`, is known).
    """
    height, width = spatial_shape(x)
    out_h, out_w = (-(-n // stride) if isinstance(n, int) else n // stride for n in (height, width))
    pad_h = max((out_h - 1) * stride + size - height, 0) if isinstance(height, int) else size - stride
    pad_w = max((out_w - 1) * stride + size - width, 0) if isinstance(width, int) else size - stride
    x = ops.pad(x, [[0, 0], [pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]])
    shifts = [x[:, dy:dy + stride * out_h:stride, dx:dx + stride * out_w:stride, :]
              for dy in range(size) for dx in range(size)]
    return ops.concatenate(shifts, axis=-1)


def add_conv_weights(layer, input_shape):
    """Creates `kernel` (k, k, Cin, filters) and `bias` (filters,) as tf.layers.conv2d does."""
    k = layer.kernel_size
    layer.kernel = layer.add_weight(name='kernel', shape=(k, k, int(input_shape[-1]), layer.filters),
                                    initializer='glorot_uniform')
    layer.bias = layer.add_weight(name='bias', shape=(layer.filters,), initializer='zeros')


class GatedConv2D(keras.layers.Layer):
    """The original's `gen_conv`: one conv, then `act(first half) * sigmoid(second half)`.

    With `activation=None` (or `filters == 3`, the output layers) it is a plain conv without a gate,
    as in the original. Padding is TensorFlow's 'SAME'.

    Args:
        filters: conv output channels (the gated output has `filters // 2`).
        kernel_size: square kernel size.
        strides: stride (1 or 2 in DeepFill).
        dilation_rate: dilation ("atrous" layers use 2, 4, 8, 16).
        activation: 'elu' (default), 'relu', or None for a plain conv.
    Input (B, H, W, Cin) -> (B, ceil(H/s), ceil(W/s), filters // 2), or `filters` when ungated.
    """

    def __init__(self, filters, kernel_size, strides=1, dilation_rate=1, activation='elu',
                 **kwargs):
        super().__init__(**kwargs)
        if activation not in _ACTIVATIONS:
            raise ValueError(f'activation must be one of {list(_ACTIVATIONS)}, got {activation!r}')
        # === Config ===
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.dilation_rate = int(dilation_rate)
        self.activation = activation

    @property
    def gated(self):
        return self.activation is not None and self.filters != 3

    def build(self, input_shape):
        add_conv_weights(self, input_shape)

    def call(self, x):
        x = ops.conv(x, ops.cast(self.kernel, x.dtype), strides=self.strides, padding='same',
                     dilation_rate=self.dilation_rate)
        x = x + ops.cast(self.bias, x.dtype)
        if not self.gated:
            return x
        feature, gate = ops.split(x, 2, axis=-1)
        return _ACTIVATIONS[self.activation](feature) * ops.sigmoid(gate)

    def input_reach(self, needed, input_size):
        """Input pixels that reach the needed output pixels: bool NumPy (h, w) -> input_size."""
        return conv_reach(needed, input_size, self.kernel_size, self.strides, self.dilation_rate)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        s = self.strides
        out = lambda n: None if n is None else -(-n // s)
        return (b, out(h), out(w), self.filters // 2 if self.gated else self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      dilation_rate=self.dilation_rate, activation=self.activation)
        return config


class GatedUpsample(keras.layers.Layer):
    """The original's `gen_deconv`: x2 nearest upsampling (align corners), then a 3x3 gated conv.

    The conv is named `<name>_conv`, as in the authors' checkpoints
    (`inpaint_net/conv13_upsample/conv13_upsample_conv/kernel`).

    Args:
        filters: conv output channels (passes on `filters // 2`).
    Input (B, H, W, C) -> (B, 2H, 2W, filters // 2).
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.filters = int(filters)
        self.conv = GatedConv2D(self.filters, 3, name=f'{self.name}_conv', dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build((input_shape[0], None, None, input_shape[-1]))

    def call(self, x):
        h, w = spatial_shape(x)
        x = resize_nearest(x, (2 * h, 2 * w))  # (B, 2H, 2W, C); equals plain repetition at x2
        return self.conv(x)

    def input_reach(self, needed, input_size=None):
        """Input pixels that reach the needed output pixels: bool NumPy (2H, 2W) -> (H, W)."""
        needed = self.conv.input_reach(needed, needed.shape)
        for axis in (0, 1):  # output row j reads input row align_corners_indices(n, 2n)[j]
            rows = np.moveaxis(needed, axis, 0)
            n = rows.shape[0] // 2
            reach = np.zeros((n,) + rows.shape[1:], bool)
            sources, firsts = np.unique(align_corners_indices(n, 2 * n), return_index=True)
            reach[sources] = np.logical_or.reduceat(rows, firsts, axis=0)  # sources are sorted
            needed = np.moveaxis(reach, 0, axis)
        return needed

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        twice = lambda n: None if n is None else 2 * n
        return (b, twice(h), twice(w), self.filters // 2)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config


class ContextualAttention(keras.layers.Layer):
    """Contextual attention (`contextual_attention` of the original), vectorized over the batch.

    Foreground features `f` attend to background features `b` (DeepFill calls it with `f = b`):
    3x3 patches of `b` downscaled by `rate` are L2-normalized and matched against `f` (also
    downscaled), scores are fused along both diagonals, masked to patches free of holes, softmaxed
    with `softmax_scale`, and full-resolution `2*rate` patches of `b` are pasted back with a
    transposed convolution (divided by 4, as the original).

    Unlike the original, which uses the first image's mask for the whole batch, each image uses its
    own mask; a mask of batch 1 is shared, which gives the original's result exactly.

    The layer returns the attention offsets as integers; `inpaint.flow.flow_to_image` colours them
    as the original's `offset_flow` picture (a visualisation, computed outside the model in float64).

    Args:
        ksize: matching patch size (3).
        stride: matching stride; only 1 (what DeepFill uses) is supported.
        rate: downscaling rate for matching (2).
        fuse_k: size of the identity kernel of the fuse step; only 3 is supported.
        softmax_scale: multiplier before the softmax (10).
        fuse: whether to fuse scores.
        block_bytes: memory for one block of query rows. The (hw x hw) score matrix is never held
            whole (1 GiB per image at 1024x1024, 16 GiB at 2048): rows are processed in blocks of
            about this size, recomputing the few neighbouring rows the fuse step needs.
    Call args:
        f: (B, H, W, C) foreground; b: (B, H, W, C) background, same size; H and W multiples of `rate`.
        mask: (B or 1, H, W, 1), 1 = hole, or None (no hole).
    Returns:
        y: (B, H, W, C) reconstructed features.
        offsets: int32 (B, H/rate, W/rate, 2), (row, column) of the best-matching patch minus the
            query's own position.
    """

    def __init__(self, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True,
                 block_bytes=128 * 2**20, **kwargs):
        super().__init__(**kwargs)
        if int(stride) != 1 or int(fuse_k) != 3:
            raise NotImplementedError('ContextualAttention supports stride=1 and fuse_k=3 only '
                                      '(what DeepFill uses)')
        # === Config ===
        self.ksize = int(ksize)
        self.stride = int(stride)
        self.rate = int(rate)
        self.fuse_k = int(fuse_k)
        self.softmax_scale = float(softmax_scale)
        self.fuse = bool(fuse)
        self.block_bytes = int(block_bytes)

    def call(self, f, b, mask=None):
        inputs = self.prepare(f, b, mask)
        index, patches = BlockedAttention(self, inputs.fp, inputs.wn, inputs.mm, inputs.raw,
                                          inputs.small).run()
        h, w = inputs.small
        offsets = attention_offsets(ops.reshape(index, (dim(f, 0), h, w)), h, w)
        return self.paste(patches, inputs.small), offsets

    def prepare(self, f, b, mask=None):
        """Everything the attention needs before its scores, per image.

        Returns `AttentionInputs`: fp (B, hw, k*k*C) the foreground's neighbourhoods; wn
        (B, hw, k*k*C) the normalized matching patches of b; mm (Bm, 1, hw) 1 where a key patch
        has no hole; raw (B, hw, 4r*r*C) the full-resolution patches of b to paste back;
        small = (h, w) = (H/r, W/r).
        """
        rate, k = self.rate, self.ksize
        batch, channels = dim(b, 0), b.shape[-1]
        height, width = spatial_shape(f)
        if isinstance(height, int) and isinstance(width, int) and (height % rate or width % rate):
            raise ValueError(f'ContextualAttention needs H and W divisible by rate={rate}, '
                             f'got {height}x{width}; pad the input')
        # Full-resolution patches of b to paste back: (B, L, 2r*2r*C), L = (H/r)*(W/r).
        raw = ops.reshape(extract_patches(b, 2 * rate, rate), (batch, -1, 4 * rate * rate * channels))

        small = (height // rate, width // rate)
        f = resize_nearest(f, small)  # (B, h, w, C)
        b = resize_nearest(b, small)
        if mask is None:
            mask = ops.zeros_like(b[:1, :, :, :1])
        else:
            mask = resize_nearest(ops.cast(mask, b.dtype), small)  # mask is given at f's size

        # Normalized matching patches of b and the same-size neighbourhoods of f: (B, hw, k*k*C).
        # scores[p, q] = fp[p] . wn[q] is the original's conv of f with the normalized patches.
        wn = ops.reshape(extract_patches(b, k, 1), (batch, -1, k * k * channels))
        wn = wn / ops.maximum(ops.sqrt(ops.sum(ops.square(wn), axis=-1, keepdims=True)), 1e-4)
        fp = ops.reshape(extract_patches(f, k, 1), (batch, -1, k * k * channels))
        # mm = 1 where a k x k mask patch has no hole: (Bm, 1, hw).
        m = extract_patches(mask, k, 1)
        mm = ops.cast(ops.equal(ops.mean(m, axis=-1), 0.0), fp.dtype)
        mm = ops.reshape(mm, (dim(mask, 0), 1, -1))
        return AttentionInputs(fp, wn, mm, raw, small)

    def paste(self, patches, small):
        """Pasted patches (B, hw, 4r*r*C) -> y (B, H, W, C): a transposed conv at stride r, / 4."""
        (h, w), r = small, self.rate
        channels = patches.shape[-1] // (4 * r * r)
        patches = ops.reshape(patches, (dim(patches, 0), h, w, 2 * r, 2 * r, channels))
        return self._overlap_add(patches, h * r, w * r) / 4.0

    def paste_reach(self, needed):
        """Which queries' patches reach the needed output pixels of `paste`.

        Args:
            needed: bool NumPy (H, W), output pixels of the layer that matter.
        Returns:
            bool NumPy (H/r, W/r): queries whose pasted 2r x 2r patch covers a needed pixel
            (query i covers rows i*r - r//2 .. i*r - r//2 + 2r - 1, as `_overlap_add`).
        """
        r, top = self.rate, self.rate // 2
        return _rows_reach(_rows_reach(needed, r, top).T, r, top).T

    def _overlap_add(self, patches, height, width):
        """col2im of (B, h, w, 2r, 2r, C) patches at stride r with TF's 'SAME' transposed padding.

        Written with tensors of at most 5 dimensions (TFLite's limit for slices).
        """
        r = self.rate
        batch, h, w, channels = dim(patches, 0), dim(patches, 1), dim(patches, 2), patches.shape[-1]
        # kernel index = a * r + q with a in {0, 1}: each (a, a') block tiles the plane at stride r.
        rows = ops.reshape(patches, (batch * h, w, 2, r, 2 * r * channels))
        canvas = 0.0
        for a in range(2):
            cols = ops.reshape(rows[:, :, a], (batch * h, w, r, 2, r * channels))
            for a2 in range(2):
                block = ops.transpose(cols[:, :, :, a2], (0, 2, 1, 3))  # (B*h, r, w, r*C)
                block = ops.reshape(block, (batch, h * r, w * r, channels))
                canvas = canvas + ops.pad(block, [[0, 0], [a * r, (1 - a) * r],
                                                  [a2 * r, (1 - a2) * r], [0, 0]])
        top = r // 2  # TF 'SAME': total padding r (kernel 2r, stride r), the smaller half first
        return canvas[:, top:top + height, top:top + width, :]

    def compute_output_shape(self, f_shape, b_shape=None, mask_shape=None):
        b, h, w = f_shape[:3]
        small = lambda n: None if n is None else n // self.rate
        return tuple(f_shape), (b, small(h), small(w), 2)

    def get_config(self):
        config = super().get_config()
        config.update(ksize=self.ksize, stride=self.stride, rate=self.rate, fuse_k=self.fuse_k,
                      softmax_scale=self.softmax_scale, fuse=self.fuse,
                      block_bytes=self.block_bytes)
        return config


class AttentionInputs(collections.namedtuple('AttentionInputs', 'fp wn mm raw small')):
    """What `ContextualAttention.prepare` returns (shapes in its docstring)."""


def _rows_reach(needed, r, top):
    """Rows i of a stride-r, 2r-tall paste (row i covers i*r - top .. i*r - top + 2r - 1) that
    cover a needed row: bool (H, ...) -> (H/r, ...)."""
    count = needed.shape[0] // r
    reach = np.zeros((count,) + needed.shape[1:], bool)
    for a in range(2 * r):
        rows = np.arange(count) * r + a - top
        inside = (rows >= 0) & (rows < needed.shape[0])
        reach[inside] |= needed[rows[inside]]
    return reach


def attention_offsets(index, h, w):
    """Argmax key positions (B, h, w) -> int32 offsets (B, h, w, 2): key (row, col) - own (row, col)."""
    index = ops.cast(index, 'int32')
    rows = ops.reshape(ops.arange(h, dtype='int32'), (1, h, 1))
    cols = ops.reshape(ops.arange(w, dtype='int32'), (1, 1, w))
    return ops.stack([index // w - rows, index % w - cols], axis=-1)


def _shift(x, step, axis=-1):
    """x[..., j - step, ...] along `axis`, zero where out of range (step is +1 or -1)."""
    axis = axis % len(x.shape)
    pad = [[0, 0] for _ in x.shape]
    pad[axis] = [1, 0] if step > 0 else [0, 1]
    keep = [slice(None)] * len(x.shape)
    keep[axis] = slice(None, -1) if step > 0 else slice(1, None)
    return ops.pad(x, pad)[tuple(keep)]


class BlockedAttention:
    """Scores, fuse, masked softmax, argmax and paste-back matmul over blocks of query rows.

    The original fuses the full score matrix S (queries p x keys q, both flattened row-major over
    the (h, w) grid) twice with a 3x3 identity kernel: first F1[p, q] = sum_t S[p+t, q+t] in
    row-major order, then the same in column-major order, t in {-1, 0, 1}, zero outside. In
    column-major order the neighbours of query (i, j) are (i +- 1, j), wrapping from row 0 to
    (h-1, j-1) and from row h-1 to (0, j+1). So a block of image rows [i0, i0 + R) needs F1 for rows
    i0-1 .. i0+R (or the wrapped rows), and F1 for a row needs S for the flattened rows next to it:
    each block is computed exactly as on the full matrix, which is never held whole.

    The block count is static (R rows a block, the last block padded with rows past the image
    whose results are dropped), so the loop compiles on every backend (`ops.map`). When the
    spatial size is unknown until run time (a SavedModel for any size), there is one block.
    """

    def __init__(self, layer, fp, wn, mm, raw, small):
        self.layer, self.fp, self.wn, self.mm, self.raw = layer, fp, wn, mm, raw
        self.h, self.w = small
        self.batch = dim(fp, 0)
        self.size = self.h * self.w  # P = Q
        known = isinstance(self.h, int) and isinstance(self.w, int)
        if known:  # blocks sized for one image when the batch is unknown
            images = self.batch if isinstance(self.batch, int) else 1
            bytes_per_row = 4 * images * self.w * self.size
            self.rows = int(min(max(layer.block_bytes // bytes_per_row, 1), self.h))
        else:
            self.rows = self.h
        self.num_blocks = -(-self.h // self.rows) if known else 1
        # Key-side gather for the column-major neighbours: key q=(k, l) -> (k + t, l), wrapped;
        # index `size` (a zero column) where there is none.
        xp = np if known else ops
        q = xp.arange(self.size)
        column_major = (q % self.w) * self.h + q // self.w
        self.key_index = {}
        for t in (-1, 1):
            moved = column_major + t
            source = (moved % self.h) * self.w + moved // self.h
            index = xp.where((moved >= 0) & (moved < self.size), source, self.size)
            self.key_index[t] = index.astype(np.int32) if known else ops.cast(index, 'int32')

    def run(self):
        """Returns argmax indices (B, hw) and pasted patches (B, hw, 4r*r*C)."""
        count = self.rows * self.w
        depth = self.raw.shape[-1]
        if self.layer.fuse:
            # F1 of the image's last and first rows, shifted: the wrapped column-major neighbours
            # of row 0 (above) and of row h-1 (below).
            wrapped = (_shift(self._image_rows(self.h - 1, 1), +1, axis=2),
                       _shift(self._image_rows(0, 1), -1, axis=2))  # each (B, 1, w, hw)
        else:
            wrapped = None

        def block(n):
            i0 = n * self.rows
            if self.layer.fuse:
                scores = self._fused(i0, wrapped)
            else:
                scores = self._scores(i0 * self.w, count)
            scores = scores * self.mm * self.layer.softmax_scale  # (B, R*w, hw)
            # Over a single key the softmax is exactly 1; Keras warns about softmax over an axis
            # of size 1 (an 8x8 image has one key), so that case is written out.
            attention = (ops.ones_like(scores) if scores.shape[-1] == 1
                         else ops.softmax(scores, axis=-1)) * self.mm
            index = ops.cast(ops.argmax(attention, axis=-1), 'int32')  # (B, R*w)
            return index, ops.matmul(attention, self.raw)  # pasted patches (B, R*w, 4r*r*C)

        if self.num_blocks == 1:
            indices, patches = (x[None] for x in block(0))
        else:  # a compiled loop over blocks, its outputs stacked: (nb, B, R*w, ...)
            indices, patches = ops.map(block, ops.arange(self.num_blocks, dtype='int32'))
        # (nb, B, R*w, ...) -> (B, nb*R*w, ...), rows past the image dropped.
        indices = ops.reshape(ops.transpose(indices, (1, 0, 2)), (self.batch, -1))[:, :self.size]
        patches = ops.reshape(ops.transpose(patches, (1, 0, 2, 3)), (self.batch, -1, depth))
        return indices, patches[:, :self.size]

    def _scores(self, start, count):
        """S for flattened query rows [start, start + count), zero outside [0, hw): (B, count, hw)."""
        rows = start + ops.arange(count, dtype='int32')
        valid = ops.cast((rows >= 0) & (rows < self.size), self.fp.dtype)
        queries = ops.take(self.fp, ops.clip(rows, 0, self.size - 1), axis=1)
        return ops.matmul(queries, ops.swapaxes(self.wn, 1, 2)) * valid[None, :, None]

    def _row_major_fused(self, start, count):
        """F1 for flattened rows [start, start + count): S[p-1, q-1] + S[p, q] + S[p+1, q+1]."""
        s = self._scores(start - 1, count + 2)
        return _shift(s[:, :-2], +1) + s[:, 1:-1] + _shift(s[:, 2:], -1)

    def _image_rows(self, i, n):
        """F1 of image rows [i, i + n): (B, n, w, hw)."""
        return ops.reshape(self._row_major_fused(i * self.w, n * self.w),
                           (self.batch, n, self.w, self.size))

    def _fused(self, i0, wrapped):
        """F for the queries of image rows [i0, i0 + R): (B, R*w, hw)."""
        r = self.rows
        rows = self._image_rows(i0 - 1, r + 2)  # (B, R + 2, w, hw): rows i0-1 .. i0+R
        # Rows -1 and h are the wrapped neighbours (rows past h only feed dropped queries).
        row_index = i0 - 1 + ops.arange(r + 2, dtype='int32')
        above, below = wrapped  # (B, 1, w, hw)
        rows = ops.where((row_index == -1)[None, :, None, None], above, rows)
        rows = ops.where((row_index == self.h)[None, :, None, None], below, rows)
        rows = ops.pad(rows, [[0, 0], [0, 0], [0, 0], [0, 1]])  # a zero key column at index hw
        # (No in-place `+=`: on PyTorch the slices are views of `rows`.)
        total = (rows[:, 1:-1, :, :-1] + ops.take(rows[:, :-2], self.key_index[-1], axis=3)
                 + ops.take(rows[:, 2:], self.key_index[1], axis=3))
        return ops.reshape(total, (self.batch, r * self.w, self.size))


class SpectralNormConv2D(keras.layers.Layer):
    """Conv with spectral normalization as neuralgym's `conv2d_spectral_norm` (one power step).

    The kernel reshaped to (k*k*Cin, Cout) is divided by sigma estimated from the non-trainable
    `u` (1, Cout); `u` is replaced by the new estimate on every call, training or not, as the
    original graph does (under JAX's `stateless_call` the new `u` comes back as non-trainable
    state). The checkpoints store `u` as `<conv>/kernel_sn/u`.

    Args:
        filters: output channels; kernel_size: square size; strides: stride. Padding is 'SAME'.
    Input (B, H, W, Cin) -> (B, ceil(H/s), ceil(W/s), filters).
    """

    def __init__(self, filters, kernel_size=5, strides=2, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)

    def build(self, input_shape):
        add_conv_weights(self, input_shape)
        self.u = self.add_weight(
            name='u', shape=(1, self.filters), trainable=False,
            initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            aggregation='only_first_replica')

    def normalized_kernel(self):
        """Returns (kernel / sigma, new u) after one power iteration."""
        w = ops.reshape(self.kernel, (-1, self.filters))  # (k*k*Cin, Cout)
        # A copy of u: `call` then updates the variable in place, which on PyTorch must not touch
        # a tensor that the backward pass still needs.
        v = _l2_normalize(ops.matmul(ops.copy(self.u), ops.transpose(w)))  # (1, k*k*Cin)
        u = _l2_normalize(ops.matmul(v, w))  # (1, Cout)
        sigma = ops.matmul(ops.matmul(v, w), ops.transpose(u))  # (1, 1)
        return ops.reshape(w / sigma, self.kernel.shape), u

    def call(self, x):
        kernel, u = self.normalized_kernel()
        self.u.assign(u)
        y = ops.conv(x, ops.cast(kernel, x.dtype), strides=self.strides, padding='same')
        return y + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        out = lambda n: None if n is None else -(-n // self.strides)
        return (b, out(h), out(w), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides)
        return config


def _l2_normalize(x, epsilon=1e-12):
    return x / (ops.sqrt(ops.sum(ops.square(x))) + epsilon)
