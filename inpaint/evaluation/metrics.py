"""Image-quality metrics of the evaluation: PSNR and SSIM (scikit-image), l1 and l2, over the whole image.

Every metric compares an output with its ground truth, uint8 RGB (H, W, 3) arrays, over all pixels
and channels (see `inpaint/evaluation/__init__.py` for why the whole image). PSNR and SSIM are
`skimage.metrics`' own, with the parameters of Wang et al. 2004 spelled out below; l1 and l2 are
the DeepFill papers' "mean l1/l2 error", which no library defines.
"""
import math

import numpy as np

METRICS = ('psnr', 'ssim', 'l1', 'l2')

DATA_RANGE = 255
# Wang et al.'s window: a Gaussian of sigma 1.5, 11 taps (scikit-image truncates at 3.5 sigma: radius
# int(3.5 * 1.5 + 0.5) = 5), with population covariances (K1 = 0.01, K2 = 0.03: scikit-image's).
SSIM_SIGMA = 1.5
MIN_SIDE = 11  # the SSIM window must fit in the image


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
    if np.array_equal(a, b):
        return math.inf
    from skimage.metrics import peak_signal_noise_ratio  # here: scikit-image loads SciPy (slow)
    return float(peak_signal_noise_ratio(a, b, data_range=DATA_RANGE))


def ssim(a, b):
    """Structural similarity (Wang et al. 2004), mean over pixels and channels, as
    `skimage.metrics.structural_similarity` computes it: each channel filtered with reflected
    borders, the 5-pixel strip along the borders left out of the mean.

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
    from skimage.metrics import structural_similarity
    return float(structural_similarity(a, b, channel_axis=2, data_range=DATA_RANGE,
                                       gaussian_weights=True, sigma=SSIM_SIGMA,
                                       use_sample_covariance=False))


def l1_error(a, b):
    """100 * mean|a - b| / 255: the mean absolute error of images scaled to [0, 1], in percent.

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape.
    """
    a, b = _pair(a, b)
    return float(100.0 * np.mean(np.abs(a - b)) / DATA_RANGE)


def l2_error(a, b):
    """100 * mean(((a - b) / 255)^2): the mean squared error of images scaled to [0, 1], in percent.

    Args:
        a, b: uint8 RGB (H, W, 3) of the same shape.
    """
    a, b = _pair(a, b)
    return float(100.0 * np.mean(((a - b) / DATA_RANGE) ** 2))


def compute_metrics(output, truth):
    """All metrics of `METRICS` for one output against its ground truth, as a dict of floats."""
    return {'psnr': psnr(output, truth), 'ssim': ssim(output, truth),
            'l1': l1_error(output, truth), 'l2': l2_error(output, truth)}
