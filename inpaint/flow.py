"""The original's attention-offset picture (`offset_flow`), computed in NumPy outside the model.

Contextual attention returns integer offsets; the original colours them with the Middlebury flow
wheel in float64 and upscales the picture by the attention rate with an align-corners bilinear
resize. Both are a visualisation, so they run here, in NumPy, on every backend (JAX computes in
float32 by default).
"""
import math

import numpy as np

from inpaint import pixels



def align_corners_positions(size_in, size_out):
    """Interpolation rows of TensorFlow's align-corners bilinear resize, in float32.

    Returns:
        (lower, upper, lerp): int (size_out,), int (size_out,), float32 (size_out,).
    """
    scale = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
    position = np.arange(size_out, dtype=np.float32) * scale
    lower = np.floor(position)
    upper = np.minimum(np.ceil(position), size_in - 1).astype(np.int64)
    return np.maximum(lower, 0).astype(np.int64), upper, (position - lower).astype(np.float32)


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
    offsets = np.asarray(offsets)
    u = offsets[..., 0].astype(np.float64)
    v = offsets[..., 1].astype(np.float64)
    radius = np.sqrt(u * u + v * v)
    max_radius = np.maximum.accumulate(np.maximum(radius.max(axis=(1, 2)), -1.0))  # running max
    scale = (max_radius + np.finfo(np.float64).eps)[:, None, None]
    u, v = u / scale, v / scale
    ncols = _WHEEL.shape[0]
    rad = np.sqrt(u * u + v * v)
    angle = np.arctan2(-v, -u) / math.pi
    fk = (angle + 1) / 2 * (ncols - 1) + 1
    k0 = np.floor(fk).astype(np.int32)
    k1 = np.where(k0 + 1 == ncols + 1, 1, k0 + 1)
    frac = (fk - k0)[..., None]
    wheel = _WHEEL / 255
    col = (1 - frac) * wheel[k0 - 1] + frac * wheel[k1 - 1]  # (B, h, w, 3)
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    image = np.floor(255 * col)  # values 0..255: uint8 conversion is exact
    return pixels.to_network(image.astype(np.float32))


def resize_bilinear(x, size):
    """Bilinear resize with `align_corners=True`, in float32 as TensorFlow's `ResizeBilinear`.

    Args:
        x: float32 (B, H, W, C).
        size: (out_h, out_w).
    Returns:
        float32 (B, out_h, out_w, C).
    """
    x = np.asarray(x, np.float32)
    (top, bottom, y_lerp), (left, right, x_lerp) = (
        align_corners_positions(n, m) for n, m in zip(x.shape[1:3], size))
    y_lerp, x_lerp = y_lerp[None, :, None, None], x_lerp[None, None, :, None]
    rows_top, rows_bottom = x[:, top], x[:, bottom]
    top_row = rows_top[:, :, left] + (rows_top[:, :, right] - rows_top[:, :, left]) * x_lerp
    bottom_row = rows_bottom[:, :, left] + (rows_bottom[:, :, right] - rows_bottom[:, :, left]) * x_lerp
    return top_row + (bottom_row - top_row) * y_lerp


def offset_flow(offsets, rate=2):
    """Offsets (B, h, w, 2) -> the original's `offset_flow` picture (B, h*rate, w*rate, 3) in [-1, 1]."""
    offsets = np.asarray(offsets)
    h, w = offsets.shape[1:3]
    return resize_bilinear(flow_to_image(offsets), (h * rate, w * rate))
