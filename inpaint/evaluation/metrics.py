"""Image-quality metrics of the evaluation: PSNR, SSIM, l1 and l2, over the whole image.

Every metric compares an output with its ground truth on uint8 RGB (H, W, 3) arrays converted to
float64, over all pixels and channels (see `inpaint/evaluation/__init__.py` for why the whole image).
"""
import math

import cv2
import numpy as np

METRICS = ('psnr', 'ssim', 'l1', 'l2')

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): scikit-image's truncate 3.5 gives Wang et al.'s 11 taps
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_DATA_RANGE = 255.0
MIN_SIDE = 2 * _SSIM_RADIUS + 1  # the SSIM window must fit in the image


def _pair(a, b):
    """Checks two uint8 RGB images of one shape; returns them as float64."""
    a, b = np.asarray(a), np.asarray(b)
    for array in (a, b):
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f'expected uint8 RGB (H, W, 3) images, got {array.dtype} {array.shape}')
    if a.shape != b.shape:
        raise ValueError(f'images differ in shape: {a.shape} vs {b.shape}')
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a, b):
    """Peak signal-to-noise ratio 10 log10(255^2 / MSE), MSE over all pixels and channels.

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape.
    Returns:
        float in dB; `math.inf` when the images are identical (MSE = 0), so a perfect result is
        never mistaken for a poor one; averages that include it are +inf too.
    """
    a, b = _pair(a, b)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return math.inf
    return float(10.0 * np.log10(_DATA_RANGE ** 2 / mse))


def ssim(a, b):
    """Structural similarity (Wang et al. 2004), mean over pixels and channels.

    11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, population covariances.
    Each channel is filtered with reflected borders ('reflect' = OpenCV's BORDER_REFLECT) and the
    5-pixel strip along the borders is left out of the mean, so the value equals
    `skimage.metrics.structural_similarity(a, b, channel_axis=2, data_range=255,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)` (to ~1e-12).

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape, each side at least 11.
    Returns:
        float, 1.0 for identical images.
    Raises:
        ValueError: wrong types or shapes, or an image smaller than the window.
    """
    a, b = _pair(a, b)
    if min(a.shape[:2]) < MIN_SIDE:
        raise ValueError(f'SSIM needs images of at least {MIN_SIDE}x{MIN_SIDE}, got {a.shape[:2]}')
    kernel = cv2.getGaussianKernel(MIN_SIDE, _SSIM_SIGMA, cv2.CV_64F)

    def blur(x):  # (H, W, 3) float64, each channel separately
        return cv2.sepFilter2D(x, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)

    c1 = (_SSIM_K1 * _DATA_RANGE) ** 2
    c2 = (_SSIM_K2 * _DATA_RANGE) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    r = _SSIM_RADIUS
    return float(s[r:-r, r:-r].mean())


def l1_error(a, b):
    """Mean l1 error as the DeepFill papers report it: 100 * mean|a - b| / 255.

    Mean absolute error over all pixels and channels of images scaled to [0, 1], in percent.

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape.
    Returns:
        float in [0, 100].
    """
    a, b = _pair(a, b)
    return float(100.0 * np.mean(np.abs(a - b)) / _DATA_RANGE)


def l2_error(a, b):
    """Mean l2 error as the DeepFill papers report it: 100 * mean(((a - b) / 255)^2).

    Mean squared error over all pixels and channels of images scaled to [0, 1], in percent.

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape.
    Returns:
        float in [0, 100].
    """
    a, b = _pair(a, b)
    return float(100.0 * np.mean(((a - b) / _DATA_RANGE) ** 2))


def compute_metrics(output, truth):
    """All metrics of `METRICS` for one output against its ground truth, as a dict of floats."""
    return {'psnr': psnr(output, truth), 'ssim': ssim(output, truth),
            'l1': l1_error(output, truth), 'l2': l2_error(output, truth)}
