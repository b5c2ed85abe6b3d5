"""Layers against NumPy references of the original's operations, and against golden outputs."""
import math
import os

import numpy as np
import pytest
from keras import ops

from conftest import GOLDEN, check_layer, to_numpy
from inpaint.flow import flow_to_image, offset_flow
from inpaint.layers import (ContextualAttention, GatedConv2D, GatedUpsample, SpectralNormConv2D,
                            resize_nearest)

T = ops.convert_to_tensor


# ---------- NumPy references (loops; written from the original's description) ----------

def np_resize_nearest(x, out_h, out_w):
    """align_corners=True nearest resize of (H, W, C) as TF computes it (float32 scale, roundf)."""
    h, w = x.shape[:2]
    def index(n_in, n_out):
        scale = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0)
        return [min(int(math.floor(np.float32(i) * scale + 0.5)), n_in - 1) for i in range(n_out)]
    return x[index(h, out_h)][:, index(w, out_w)]


def np_same_patches(x, k, stride):
    """TF 'SAME' patches of (H, W, C): (ceil(H/s), ceil(W/s), k, k, C)."""
    h, w, c = x.shape
    oh, ow = -(-h // stride), -(-w // stride)
    ph, pw = max((oh - 1) * stride + k - h, 0), max((ow - 1) * stride + k - w, 0)
    xp = np.pad(x, [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)])
    out = np.zeros((oh, ow, k, k, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[i, j] = xp[i * stride:i * stride + k, j * stride:j * stride + k]
    return out


def np_conv_same(x, kernel, stride=1, dilation=1):
    """Direct 'SAME' convolution of (H, W, Cin) with (k, k, Cin, Cout)."""
    k = kernel.shape[0]
    eff = (k - 1) * dilation + 1
    h, w, _ = x.shape
    oh, ow = -(-h // stride), -(-w // stride)
    ph, pw = max((oh - 1) * stride + eff - h, 0), max((ow - 1) * stride + eff - w, 0)
    xp = np.pad(x, [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)]).astype(np.float64)
    out = np.zeros((oh, ow, kernel.shape[3]))
    for dy in range(k):
        for dx in range(k):
            window = xp[dy * dilation:dy * dilation + (oh - 1) * stride + 1:stride,
                        dx * dilation:dx * dilation + (ow - 1) * stride + 1:stride]
            out += window @ kernel[dy, dx].astype(np.float64)
    return out


def np_contextual_attention(f, b, mask, rate=2, k=3, scale=10.0, fuse=True):
    """The original's steps for one image: f, b (H, W, C); mask (H, W, 1). Returns y, offsets."""
    height, width, c = f.shape
    raw = np_same_patches(b, 2 * rate, rate)  # (h, w, 2r, 2r, C)
    h, w = height // rate, width // rate
    fs, bs, ms = (np_resize_nearest(t, h, w) for t in (f, b, mask))
    patches = np_same_patches(bs, k, 1).reshape(h * w, k, k, c).astype(np.float64)
    norms = np.maximum(np.sqrt((patches ** 2).sum(axis=(1, 2, 3))), 1e-4)
    filters = (patches / norms[:, None, None, None]).transpose(1, 2, 3, 0)  # (k, k, C, L)
    scores = np_conv_same(fs, filters).reshape(h * w, h * w)  # (P, Q)

    def fuse_diagonal(s):
        out = np.zeros_like(s)
        for p in range(s.shape[0]):
            for q in range(s.shape[1]):
                for t in (-1, 0, 1):
                    if 0 <= p + t < s.shape[0] and 0 <= q + t < s.shape[1]:
                        out[p, q] += s[p + t, q + t]
        return out

    if fuse:
        scores = fuse_diagonal(scores)
        scores = scores.reshape(h, w, h, w).transpose(1, 0, 3, 2).reshape(h * w, h * w)
        scores = fuse_diagonal(scores).reshape(w, h, w, h).transpose(1, 0, 3, 2)
    scores = scores.reshape(h, w, h * w)
    mm = (np_same_patches(ms, k, 1).reshape(h * w, -1).mean(axis=1) == 0).astype(np.float64)
    scores = scores * mm * scale
    att = np.exp(scores - scores.max(axis=-1, keepdims=True))
    att = att / att.sum(axis=-1, keepdims=True) * mm
    index = att.argmax(axis=-1)
    offsets = np.stack([index // w - np.arange(h)[:, None], index % w - np.arange(w)[None]], -1)
    # Transposed conv, stride r, 'SAME': output row = i*r + ky - r//2.
    y = np.zeros((height + 2 * rate, width + 2 * rate, c))
    raw = raw.reshape(h * w, 2 * rate, 2 * rate, c)
    for i in range(h):
        for j in range(w):
            patch = np.tensordot(att[i, j], raw, axes=1)  # (2r, 2r, C)
            y[i * rate:i * rate + 2 * rate, j * rate:j * rate + 2 * rate] += patch
    top = rate // 2
    return y[top:top + height, top:top + width] / 4.0, offsets


def np_flow_colours(u, v):
    """The Middlebury colour code the original uses, for normalized u, v (arrays)."""
    segs = [(15, 0, 1, True), (6, 1, 0, False), (4, 1, 2, True), (11, 2, 1, False),
            (13, 2, 0, True), (6, 0, 2, False)]
    wheel = []
    for n, full, ramp, up in segs:
        for i in range(n):
            colour = [0.0, 0.0, 0.0]
            colour[full] = 255
            r = math.floor(255 * i / n)
            colour[ramp] = r if up else 255 - r
            wheel.append(colour)
    wheel = np.array(wheel)
    ncols = len(wheel)
    rad = np.sqrt(u ** 2 + v ** 2)
    a = np.arctan2(-v, -u) / np.pi
    fk = (a + 1) / 2 * (ncols - 1) + 1
    k0 = np.floor(fk).astype(int)
    k1 = np.where(k0 + 1 == ncols + 1, 1, k0 + 1)
    frac = fk - k0
    img = np.zeros(u.shape + (3,))
    for ch in range(3):
        col0, col1 = wheel[k0 - 1, ch] / 255, wheel[k1 - 1, ch] / 255
        col = (1 - frac) * col0 + frac * col1
        col = np.where(rad <= 1, 1 - rad * (1 - col), col * 0.75)
        img[..., ch] = np.floor(255 * col)
    return img


# ---------- resizing ----------

@pytest.mark.parametrize('src,dst', [((64, 48), (32, 24)), ((7, 5), (3, 2)), ((5, 6), (10, 12)),
                                     ((46, 66), (23, 33)), ((1, 4), (1, 2))])
def test_resize_nearest_is_align_corners(src, dst):
    x = np.random.default_rng(0).normal(size=src + (2,)).astype(np.float32)
    got = to_numpy(resize_nearest(T(x[None]), dst))[0]
    np.testing.assert_array_equal(got, np_resize_nearest(x, *dst))


def test_align_corners_downscale_is_not_striding():
    x = np.arange(64, dtype=np.float32).reshape(1, 64, 1, 1)
    got = to_numpy(resize_nearest(T(x), (32, 1))).ravel()
    assert got[-1] == 63 and not np.array_equal(got, x.ravel()[::2])


def test_x2_upsampling_equals_repetition():
    x = np.random.default_rng(1).normal(size=(1, 13, 9, 3)).astype(np.float32)
    got = to_numpy(resize_nearest(T(x), (26, 18)))
    np.testing.assert_array_equal(got, x.repeat(2, axis=1).repeat(2, axis=2))


# ---------- gated convolution ----------

@pytest.mark.parametrize('stride,dilation,activation', [(1, 1, 'elu'), (2, 1, 'elu'), (1, 4, 'elu'),
                                                        (1, 1, 'relu'), (1, 1, None)])
def test_gated_conv_matches_numpy(stride, dilation, activation):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 11, 10, 5)).astype(np.float32)
    layer = GatedConv2D(8, 3, stride, dilation, activation, name='conv')
    oh, ow = -(-11 // stride), -(-10 // stride)
    channels = 8 if activation is None else 4
    check_layer(layer, [x], (2, oh, ow, channels))
    kernel, bias = to_numpy(layer.kernel), rng.normal(size=8).astype(np.float32)
    layer.bias.assign(bias)
    got = to_numpy(layer(T(x)))
    for i in range(2):
        ref = np_conv_same(x[i], kernel, stride, dilation) + bias
        if activation is not None:
            act = {'elu': lambda t: np.where(t > 0, t, np.expm1(t)), 'relu': lambda t: np.maximum(t, 0)}
            ref = act[activation](ref[..., :4]) / (1 + np.exp(-ref[..., 4:]))
        np.testing.assert_allclose(got[i], ref, rtol=1e-4, atol=1e-5)  # float32 vs float64 sums


def test_rgb_output_conv_is_not_gated():
    layer = GatedConv2D(3, 3, activation='elu')
    assert not layer.gated
    assert tuple(layer(ops.zeros([1, 8, 8, 4])).shape) == (1, 8, 8, 3)


def test_gated_upsample():
    x = np.random.default_rng(3).normal(size=(2, 5, 6, 4)).astype(np.float32)
    layer = GatedUpsample(6, name='conv13_upsample')
    out = check_layer(layer, [x], (2, 10, 12, 3))[0]
    assert layer.conv.name == 'conv13_upsample_conv'
    np.testing.assert_allclose(out, to_numpy(layer.conv(T(x.repeat(2, 1).repeat(2, 2)))),
                               rtol=1e-6, atol=1e-6)


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match='activation'):
        GatedConv2D(8, 3, activation='tanh')


# ---------- contextual attention ----------

def _ca_inputs(seed, batch=2, size=(16, 12), channels=4):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(batch,) + size + (channels,)).astype(np.float32)
    masks = np.zeros((batch,) + size + (1,), np.float32)
    for i in range(batch):
        top, left = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
        masks[i, top:top + size[0] // 2, left:left + size[1] // 3] = 1
    return f, masks


def _attend(layer, f, mask):
    """(y, offsets) of `layer(f, f, mask)` as NumPy."""
    y, offsets = layer(T(f), T(f), T(mask))
    return to_numpy(y), to_numpy(offsets)


# Blocks of query rows: the whole 8-row grid at once, one row, three rows (a partial last block).
BLOCKS = {'whole': 128 * 2**20, 'one_row': 1, 'three_rows': 3 * 4 * 2 * 6 * 48}


@pytest.mark.parametrize('block', BLOCKS)
def test_contextual_attention_matches_numpy_loops(block):
    f, masks = _ca_inputs(4)
    layer = ContextualAttention(name='contextual_attention', block_bytes=BLOCKS[block])
    y, offsets = check_layer(layer, [f, f, masks], f.shape)
    assert offsets.shape == (2, 8, 6, 2) and offsets.dtype == np.int32
    for i in range(2):
        ref_y, ref_offsets = np_contextual_attention(f[i], f[i], masks[i])
        np.testing.assert_allclose(y[i], ref_y, rtol=1e-4, atol=1e-4 * np.abs(ref_y).max())
        np.testing.assert_array_equal(offsets[i], ref_offsets)


def test_block_sizes_of_the_parametrization():
    """The block sizes the tests above use: 'three_rows' gives 3-row blocks over the 8-row grid
    (a partial last block), 'one_row' 1-row blocks; the golden test's 5-row blocks over 12 rows."""
    from inpaint.layers import BlockedAttention
    cases = [(BLOCKS['whole'], 2, (8, 6), 8, 1), (BLOCKS['one_row'], 2, (8, 6), 1, 8),
             (BLOCKS['three_rows'], 2, (8, 6), 3, 3), (5 * 2 * 16 * 192 * 4, 2, (12, 16), 5, 3)]
    for block_bytes, batch, small, rows, count in cases:
        queries = np.zeros((batch, small[0] * small[1], 36), np.float32)
        blocked = BlockedAttention(ContextualAttention(block_bytes=block_bytes), queries, None, None,
                                   None, small)
        assert (blocked.rows, blocked.num_blocks) == (rows, count), block_bytes


def test_flow_colours_match_numpy():
    """The colours as a NumPy reference computes them, scaled to [-1, 1] as the original graph
    executes `img / 127.5 - 1.` (a multiplication by the float32 reciprocal: the golden offset_flow
    pictures are matched bit for bit with it, on 83-91% of their values with a true division)."""
    offsets = np.random.default_rng(5).integers(-20, 21, size=(1, 40, 40, 2)).astype(np.int32)
    got = flow_to_image(offsets)[0]
    radius = np.sqrt((offsets.astype(np.float64) ** 2).sum(-1)).max()
    uv = offsets[0] / (radius + np.finfo(np.float64).eps)
    ref = np_flow_colours(uv[..., 0], uv[..., 1]).astype(np.float32) * np.float32(1 / 127.5) - 1
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize('block', BLOCKS)
def test_contextual_attention_offsets_match_numpy(block):
    f, masks = _ca_inputs(5, batch=1)
    _, expected = np_contextual_attention(f[0], f[0], masks[0])
    _, offsets = _attend(ContextualAttention(block_bytes=BLOCKS[block]), f, masks)
    np.testing.assert_array_equal(offsets[0], expected)


def test_flow_normalization_is_a_running_maximum_over_the_batch():
    small = np.zeros((1, 2, 2, 2), np.int32); small[0, 0, 0] = (1, 0)
    large = np.zeros((1, 2, 2, 2), np.int32); large[0, 0, 0] = (4, 0)
    alone = flow_to_image(small)
    after_large = flow_to_image(np.concatenate([large, small]))[1]
    before_large = flow_to_image(np.concatenate([small, large]))[0]
    np.testing.assert_array_equal(before_large, alone[0])
    assert not np.array_equal(after_large, alone[0])


@pytest.mark.parametrize('block_bytes', [128 * 2**20, 1, 5 * 2 * 16 * 192 * 4])
def test_contextual_attention_matches_golden(block_bytes):
    data = np.load(os.path.join(GOLDEN, 'contextual_attention.npz'))
    rate = int(data['rate'])
    layer = ContextualAttention(int(data['ksize']), int(data['stride']), rate,
                                int(data['fuse_k']), float(data['softmax_scale']),
                                block_bytes=block_bytes)
    y, offsets = _attend(layer, data['f'], data['mask'])
    flow = offset_flow(offsets, rate)  # the original's picture, at f's size
    # Golden README: y within 1e-4 relative to max|y|; flow identical on >= 99% of pixels.
    assert np.abs(y - data['y']).max() < 1e-4 * np.abs(data['y']).max()
    assert flow.shape == data['flow'].shape
    same = np.all(np.abs(flow - data['flow']) < 1e-6, axis=-1)
    assert same.mean() >= 0.99


def test_contextual_attention_masks_per_image():
    f, masks = _ca_inputs(6)
    layer = ContextualAttention()
    y, _ = _attend(layer, f, masks)
    for i in range(2):
        yi, _ = _attend(layer, f[i:i + 1], masks[i:i + 1])
        np.testing.assert_allclose(y[i], yi[0], rtol=1e-5, atol=1e-5)
    shared, _ = _attend(layer, f, masks[:1])
    tiled, _ = _attend(layer, f, np.repeat(masks[:1], 2, 0))
    np.testing.assert_allclose(shared, tiled, rtol=1e-6, atol=1e-6)
    assert np.abs(shared[1] - y[1]).max() > 1e-3  # the mask matters


def test_contextual_attention_without_fuse_matches_numpy():
    f, masks = _ca_inputs(8, batch=1)
    y, _ = _attend(ContextualAttention(fuse=False, block_bytes=1), f, masks)
    ref, _ = np_contextual_attention(f[0], f[0], masks[0], fuse=False)
    np.testing.assert_allclose(y[0], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_contextual_attention_rejects_sizes_not_divisible_by_rate():
    with pytest.raises(ValueError, match='divisible'):
        ContextualAttention()(ops.zeros([1, 9, 8, 2]), ops.zeros([1, 9, 8, 2]), ops.zeros([1, 9, 8, 1]))


# ---------- spectral norm ----------

def test_spectral_norm_conv_matches_numpy_and_updates_u():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 9, 9, 3)).astype(np.float32)
    layer = SpectralNormConv2D(5, 5, 2, name='conv1')
    layer.build(x.shape)
    u0 = to_numpy(layer.u).copy()
    out = to_numpy(layer(T(x)))
    kernel = to_numpy(layer.kernel)
    w = kernel.reshape(-1, 5).astype(np.float64)
    l2n = lambda t: t / (np.sqrt((t ** 2).sum()) + 1e-12)
    v = l2n(u0 @ w.T)
    u1 = l2n(v @ w)
    sigma = (v @ w @ u1.T).item()
    # u has unit norm: float32 rounds each entry by ~1e-7 absolute, however small the entry (an
    # entry of -8.6e-5 once differed by 3.4e-5 relative), hence atol; a wrong update is O(0.1).
    np.testing.assert_allclose(to_numpy(layer.u), u1, rtol=1e-5, atol=1e-6)
    for i in range(2):
        ref = np_conv_same(x[i], kernel / sigma, 2) + to_numpy(layer.bias)
        np.testing.assert_allclose(out[i], ref, rtol=1e-4, atol=1e-5)
    # u moves on every call, also outside training.
    before = to_numpy(layer.u).copy()
    layer(T(x), training=False)
    assert not np.array_equal(before, to_numpy(layer.u))
    check_layer(SpectralNormConv2D(4, 5, 2), [x], (2, 5, 5, 4))


def test_spectral_norm_u_is_not_trainable():
    layer = SpectralNormConv2D(4)
    layer.build((None, 8, 8, 3))
    assert [w.path.split('/')[-1] for w in layer.trainable_weights] == ['kernel', 'bias']
    assert [w.path.split('/')[-1] for w in layer.non_trainable_weights] == ['u']
