"""Classical baselines: OpenCV's inpainting (Telea, Navier-Stokes), with the model's call signature."""
import cv2
import numpy as np

INPAINT_RADIUS = 3  # cv2.inpaint's neighbourhood radius in pixels (OpenCV's documented example)


def _cv2_inpaint(image, mask, flags):
    image = np.asarray(image)
    mask = np.asarray(mask, bool)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected a uint8 RGB (H, W, 3) image, got {image.dtype} {image.shape}')
    if mask.shape != image.shape[:2]:
        raise ValueError(f'mask shape {mask.shape} does not match image {image.shape[:2]}')
    filled = cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8) * 255, INPAINT_RADIUS, flags)
    # Known pixels are kept explicitly, as the model's output composition does.
    return np.where(mask[:, :, None], filled, image)


def telea(image, mask):
    """Fills holes with Telea's fast-marching method (`cv2.INPAINT_TELEA`, radius 3).

    Each channel is filled with the same geometric weights, so RGB and BGR give the same result.

    Args:
        image: uint8 RGB (H, W, 3). OpenCV reads some pixels under the hole's edge, so give the
            masked input (as `run_evaluation` does), not the ground truth.
        mask: bool (H, W), True = hole.
    Returns:
        uint8 RGB (H, W, 3); pixels outside the mask are the input's.
    """
    return _cv2_inpaint(image, mask, cv2.INPAINT_TELEA)


def navier_stokes(image, mask):
    """Fills holes with the Navier-Stokes based method (`cv2.INPAINT_NS`, radius 3).

    Args and returns as `telea`.
    """
    return _cv2_inpaint(image, mask, cv2.INPAINT_NS)


BASELINES = {'telea': telea, 'ns': navier_stokes}
