"""Keras layers of DeepFill v2: gated convolution, gated x2 upsampling, contextual attention and
spectral-normalized convolution, each computing exactly what the authors' TF1 code computes.

All tensors are NHWC float32. Resizing uses TensorFlow's align-corners kernels (the original's
`resize(..., align_corners=True)`), which are not plain striding for downscaling.
"""
import math

import keras
import numpy as np
import tensorflow as tf

_ACTIVATIONS = {'elu': tf.nn.elu, 'relu': tf.nn.relu, None: None}


def resize_nearest(x, size):
    """Nearest-neighbour resize with `align_corners=True` (source index `round(i*(in-1)/(out-1))`).

    Args:
        x: (B, H, W, C).
        size: (out_h, out_w), ints or int32 tensors.
    Returns:
        (B, out_h, out_w, C).
    """
    return tf.raw_ops.ResizeNearestNeighbor(
        images=x, size=tf.cast(tf.stack(size), tf.int32), align_corners=True,
        half_pixel_centers=False)


def resize_bilinear(x, size):
    """Bilinear resize with `align_corners=True`, as the original's flow upscaling. (B, H, W, C)."""
    return tf.raw_ops.ResizeBilinear(
        images=x, size=tf.cast(tf.stack(size), tf.int32), align_corners=True,
        half_pixel_centers=False)


def spatial_shape(x):
    """(H, W) of an NHWC tensor: static ints when known, else int32 scalars."""
    static = x.shape[1:3]
    dynamic = tf.shape(x)[1:3]
    return [static[i] if static[i] is not None else dynamic[i] for i in range(2)]


def _add_conv_weights(layer, input_shape):
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
        _add_conv_weights(self, input_shape)

    def call(self, x):
        x = tf.nn.conv2d(x, self.kernel, strides=self.strides, padding='SAME',
                         dilations=self.dilation_rate)
        x = tf.nn.bias_add(x, self.bias)
        if not self.gated:
            return x
        feature, gate = tf.split(x, 2, axis=-1)
        return _ACTIVATIONS[self.activation](feature) * tf.sigmoid(gate)

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

    def build(self, input_shape):
        self.conv = GatedConv2D(self.filters, 3, name=f'{self.name}_conv')
        self.conv.build((input_shape[0], None, None, input_shape[-1]))

    def call(self, x):
        h, w = spatial_shape(x)
        x = resize_nearest(x, (2 * h, 2 * w))  # (B, 2H, 2W, C); equals plain repetition at x2
        return self.conv(x)

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
        flow: (B, H, W, 3) attention offsets as a colour image in [-1, 1].
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
        rate, k = self.rate, self.ksize
        batch = tf.shape(b)[0]
        channels = b.shape[-1] if b.shape[-1] is not None else tf.shape(b)[-1]
        height, width = spatial_shape(f)
        if isinstance(height, int) and isinstance(width, int) and (height % rate or width % rate):
            raise ValueError(f'ContextualAttention needs H and W divisible by rate={rate}, '
                             f'got {height}x{width}; pad the input')
        # Full-resolution patches of b to paste back: (B, L, 2r*2r*C), L = (H/r)*(W/r).
        raw = tf.image.extract_patches(b, [1, 2 * rate, 2 * rate, 1], [1, rate, rate, 1],
                                       [1, 1, 1, 1], padding='SAME')
        raw = tf.reshape(raw, [batch, -1, 4 * rate * rate * channels])

        small = (height // rate, width // rate)
        f = resize_nearest(f, small)  # (B, h, w, C)
        b = resize_nearest(b, small)
        if mask is None:
            mask = tf.zeros_like(b[:1, :, :, :1])
        else:
            mask = resize_nearest(mask, small)  # mask is given at f's size

        # Normalized matching patches of b and the same-size neighbourhoods of f: (B, hw, k*k*C).
        # scores[p, q] = fp[p] . wn[q] is the original's conv of f with the normalized patches.
        wn = tf.reshape(tf.image.extract_patches(b, [1, k, k, 1], [1, 1, 1, 1], [1, 1, 1, 1], 'SAME'),
                        [batch, -1, k * k * channels])
        wn = wn / tf.maximum(tf.norm(wn, axis=-1, keepdims=True), 1e-4)
        fp = tf.reshape(tf.image.extract_patches(f, [1, k, k, 1], [1, 1, 1, 1], [1, 1, 1, 1], 'SAME'),
                        [batch, -1, k * k * channels])
        # mm = 1 where a k x k mask patch has no hole: (Bm, 1, hw).
        m = tf.image.extract_patches(mask, [1, k, k, 1], [1, 1, 1, 1], [1, 1, 1, 1], 'SAME')
        mm = tf.cast(tf.equal(tf.reduce_mean(m, axis=-1), 0.0), fp.dtype)
        mm = tf.reshape(mm, [tf.shape(mask)[0], 1, -1])

        index, patches = _BlockedAttention(self, fp, wn, mm, raw, small).run()
        h, w = small
        flow = self._flow_image(tf.reshape(index, [batch, h, w]), h, w)
        # Paste back: transposed conv with the raw patches, stride r: (B, H, W, C).
        patches = tf.reshape(patches, [batch, h, w, 2 * rate, 2 * rate, channels])
        y = self._overlap_add(patches, height, width, channels) / 4.0
        return y, flow

    def _overlap_add(self, patches, height, width, channels):
        """col2im of (B, h, w, 2r, 2r, C) patches at stride r with TF's 'SAME' transposed padding."""
        r = self.rate
        batch, h, w = tf.shape(patches)[0], tf.shape(patches)[1], tf.shape(patches)[2]
        # kernel index = a * r + q with a in {0, 1}: each (a, a') block tiles the plane at stride r.
        patches = tf.reshape(patches, [batch, h, w, 2, r, 2, r, channels])
        canvas = 0.0
        for a in range(2):
            for a2 in range(2):
                block = patches[:, :, :, a, :, a2, :, :]  # (B, h, w, r, r, C)
                block = tf.reshape(tf.transpose(block, [0, 1, 3, 2, 4, 5]),
                                   [batch, h * r, w * r, channels])
                canvas += tf.pad(block, [[0, 0], [a * r, (1 - a) * r], [a2 * r, (1 - a2) * r],
                                         [0, 0]])
        top = r // 2  # TF 'SAME': total padding r (kernel 2r, stride r), the smaller half first
        return canvas[:, top:top + height, top:top + width, :]

    def _flow_image(self, index, h, w):
        """Offsets (argmax position minus own position) as a colour image upscaled by `rate`."""
        offsets = tf.stack([index // w - tf.range(h)[None, :, None],
                            index % w - tf.range(w)[None, None, :]], axis=-1)
        image = flow_to_image(offsets)  # (B, h, w, 3) in [-1, 1]
        return resize_bilinear(image, (h * self.rate, w * self.rate))

    def compute_output_shape(self, f_shape, b_shape=None, mask_shape=None):
        return tuple(f_shape), tuple(f_shape[:3]) + (3,)

    def get_config(self):
        config = super().get_config()
        config.update(ksize=self.ksize, stride=self.stride, rate=self.rate, fuse_k=self.fuse_k,
                      softmax_scale=self.softmax_scale, fuse=self.fuse,
                      block_bytes=self.block_bytes)
        return config


class _BlockedAttention:
    """Scores, fuse, masked softmax, argmax and paste-back matmul over blocks of query rows.

    The original fuses the full score matrix S (queries p x keys q, both flattened row-major over
    the (h, w) grid) twice with a 3x3 identity kernel: first F1[p, q] = sum_t S[p+t, q+t] in
    row-major order, then the same in column-major order, t in {-1, 0, 1}, zero outside. In
    column-major order the neighbours of query (i, j) are (i +- 1, j), wrapping from row 0 to
    (h-1, j-1) and from row h-1 to (0, j+1). So a block of image rows [i0, i1) needs F1 for rows
    i0-1 .. i1 (or the wrapped rows), and F1 for a row needs S for the flattened rows next to it:
    each block is computed exactly as on the full matrix, which is never held whole.
    """

    def __init__(self, layer, fp, wn, mm, raw, small):
        self.layer, self.fp, self.wn, self.mm, self.raw = layer, fp, wn, mm, raw
        self.h, self.w = small
        self.batch = tf.shape(fp)[0]
        self.size = self.h * self.w  # P = Q
        # Key-side gather for the column-major neighbours: key q=(k, l) -> (k + t, l), wrapped;
        # index `size` (a zero column) where there is none.
        q = tf.range(self.size)
        column_major = (q % self.w) * self.h + q // self.w
        self.key_index = {}
        for t in (-1, 1):
            moved = column_major + t
            source = (moved % self.h) * self.w + moved // self.h
            self.key_index[t] = tf.where((moved >= 0) & (moved < self.size), source, self.size)

    def run(self):
        """Returns argmax indices (B, hw) and pasted patches (B, hw, 4r*r*C)."""
        bytes_per_row = 4 * tf.cast(self.batch, tf.int64) * tf.cast(self.w * self.size, tf.int64)
        rows = tf.cast(tf.maximum(tf.cast(self.layer.block_bytes, tf.int64) // bytes_per_row, 1),
                       tf.int32)
        num_blocks = (self.h + rows - 1) // rows
        indices = tf.TensorArray(tf.int32, size=num_blocks, infer_shape=False)
        patches = tf.TensorArray(self.raw.dtype, size=num_blocks, infer_shape=False)

        def body(n, indices, patches):
            i0 = n * rows
            i1 = tf.minimum(i0 + rows, self.h)
            if self.layer.fuse:
                scores = self._fused(i0, i1)
            else:
                scores = self._scores(i0 * self.w, (i1 - i0) * self.w)
            scores = scores * self.mm * self.layer.softmax_scale  # (B, n*w, hw)
            attention = tf.nn.softmax(scores, axis=-1) * self.mm
            index = tf.argmax(attention, axis=-1, output_type=tf.int32)  # (B, n*w)
            pasted = tf.matmul(attention, self.raw)  # (B, n*w, 4r*r*C)
            # Rows first, so that the blocks concatenate along axis 0.
            return (n + 1, indices.write(n, tf.transpose(index)),
                    patches.write(n, tf.transpose(pasted, [1, 0, 2])))

        _, indices, patches = tf.while_loop(lambda n, *_: n < num_blocks, body,
                                            (tf.constant(0), indices, patches))
        return tf.transpose(indices.concat()), tf.transpose(patches.concat(), [1, 0, 2])

    def _scores(self, start, count):
        """S for flattened query rows [start, start + count), zero outside [0, hw): (B, count, hw)."""
        rows = start + tf.range(count)
        valid = tf.cast((rows >= 0) & (rows < self.size), self.fp.dtype)
        queries = tf.gather(self.fp, tf.clip_by_value(rows, 0, self.size - 1), axis=1)
        return tf.matmul(queries, self.wn, transpose_b=True) * valid[None, :, None]

    def _row_major_fused(self, start, count):
        """F1 for flattened rows [start, start + count): S[p-1, q-1] + S[p, q] + S[p+1, q+1]."""
        s = self._scores(start - 1, count + 2)
        before = tf.pad(s[:, :-2], [[0, 0], [0, 0], [1, 0]])[:, :, :-1]  # S[p-1, q-1]
        after = tf.pad(s[:, 2:], [[0, 0], [0, 0], [0, 1]])[:, :, 1:]  # S[p+1, q+1]
        return before + s[:, 1:-1] + after

    def _image_row(self, i):
        """F1 of image row i: (B, w, hw)."""
        return self._row_major_fused(i * self.w, self.w)

    def _fused(self, i0, i1):
        """F for the queries of image rows [i0, i1): (B, (i1-i0)*w, hw)."""
        n = i1 - i0
        main = tf.reshape(self._row_major_fused(i0 * self.w, n * self.w),
                          [self.batch, n, self.w, self.size])
        # Column-major neighbours above row i0 and below row i1 - 1, wrapped at the image's ends.
        above = tf.cond(
            i0 > 0, lambda: self._image_row(i0 - 1),
            lambda: tf.pad(self._image_row(self.h - 1), [[0, 0], [1, 0], [0, 0]])[:, :-1])
        below = tf.cond(
            i1 < self.h, lambda: self._image_row(i1),
            lambda: tf.pad(self._image_row(0), [[0, 0], [0, 1], [0, 0]])[:, 1:])
        rows = tf.concat([above[:, None], main, below[:, None]], axis=1)  # (B, n + 2, w, hw)
        rows = tf.pad(rows, [[0, 0], [0, 0], [0, 0], [0, 1]])  # a zero key column at index hw
        total = rows[:, 1:-1, :, :-1]
        for t, part in ((-1, rows[:, :-2]), (1, rows[:, 2:])):
            total += tf.gather(part, self.key_index[t], axis=3)
        return tf.reshape(total, [self.batch, n * self.w, self.size])


def _color_wheel():
    """The Middlebury flow colour wheel (55 colours, RGB 0..255), as the original builds it."""
    segments = [(15, (255, None, 0)), (6, (None, 255, 0)), (4, (0, 255, None)),
                (11, (0, None, 255)), (13, (None, 0, 255)), (6, (255, 0, None))]
    falling = [False, True, False, True, False, True]  # ramps that go down (255 - ramp)
    wheel = []
    for (n, colour), down in zip(segments, falling):
        ramp = np.floor(255 * np.arange(n) / n)
        for i in range(n):
            wheel.append([(255 - ramp[i] if down else ramp[i]) if c is None else c for c in colour])
    return np.array(wheel, np.float64)


_WHEEL = _color_wheel()


def flow_to_image(offsets):
    """Colour-codes integer offsets like the original's `flow_to_image` (float64, then uint8).

    The maximum radius used for normalization is a running maximum over the batch, as in the
    original's loop, so a batch of one image gives that image's own colours.

    Args:
        offsets: int (B, h, w, 2), (row, column) displacement.
    Returns:
        float32 (B, h, w, 3) in [-1, 1].
    """
    u = tf.cast(offsets[..., 0], tf.float64)
    v = tf.cast(offsets[..., 1], tf.float64)
    radius = tf.sqrt(u * u + v * v)
    max_radius = tf.maximum(tf.reduce_max(radius, axis=[1, 2]), -1.0)  # (B,)
    # Running maximum over the batch: max over j <= i.
    n = tf.shape(max_radius)[0]
    earlier = tf.linalg.band_part(tf.ones([n, n], tf.bool), -1, 0)
    max_radius = tf.reduce_max(tf.where(earlier, max_radius[None, :], -1.0), axis=1)
    scale = (max_radius + np.finfo(np.float64).eps)[:, None, None]
    u, v = u / scale, v / scale
    ncols = _WHEEL.shape[0]
    rad = tf.sqrt(u * u + v * v)
    angle = tf.atan2(-v, -u) / math.pi
    fk = (angle + 1) / 2 * (ncols - 1) + 1
    k0 = tf.cast(tf.floor(fk), tf.int32)
    k1 = tf.where(k0 + 1 == ncols + 1, 1, k0 + 1)
    frac = (fk - tf.cast(k0, tf.float64))[..., None]
    wheel = tf.constant(_WHEEL / 255, tf.float64)
    col = (1 - frac) * tf.gather(wheel, k0 - 1) + frac * tf.gather(wheel, k1 - 1)  # (B, h, w, 3)
    inside = (rad <= 1)[..., None]
    col = tf.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    image = tf.floor(255 * col)  # values 0..255: uint8 conversion is exact
    return tf.cast(image, tf.float32) / 127.5 - 1.0


class SpectralNormConv2D(keras.layers.Layer):
    """Conv with spectral normalization as neuralgym's `conv2d_spectral_norm` (one power step).

    The kernel reshaped to (k*k*Cin, Cout) is divided by sigma estimated from the non-trainable
    `u` (1, Cout); `u` is replaced by the new estimate on every call, training or not, as the
    original graph does. The checkpoints store `u` as `<conv>/kernel_sn/u`.

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
        _add_conv_weights(self, input_shape)
        self.u = self.add_weight(
            name='u', shape=(1, self.filters), trainable=False,
            initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            aggregation='only_first_replica')

    def normalized_kernel(self):
        """Returns (kernel / sigma, new u) after one power iteration."""
        w = tf.reshape(self.kernel, [-1, self.filters])  # (k*k*Cin, Cout)
        v = _l2_normalize(tf.matmul(self.u, w, transpose_b=True))  # (1, k*k*Cin)
        u = _l2_normalize(tf.matmul(v, w))  # (1, Cout)
        sigma = tf.matmul(tf.matmul(v, w), u, transpose_b=True)  # (1, 1)
        return tf.reshape(w / sigma, tf.shape(self.kernel)), u

    def call(self, x):
        kernel, u = self.normalized_kernel()
        self.u.assign(u)
        return tf.nn.conv2d(x, kernel, strides=self.strides, padding='SAME') + self.bias

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        out = lambda n: None if n is None else -(-n // self.strides)
        return (b, out(h), out(w), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides)
        return config


def _l2_normalize(x, epsilon=1e-12):
    return x / (tf.sqrt(tf.reduce_sum(tf.square(x))) + epsilon)
