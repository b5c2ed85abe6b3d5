"""Pixel values <-> the network's range, written once: `x / 127.5 - 1` and `(x + 1) * 127.5`.

The original graph scales images (`batch / 127.5 - 1.`, `image / 127.5 - 1.`), and its offset-flow
picture, with these expressions; TensorFlow executes the division as a multiplication by the
float32 reciprocal: the inference goldens' known pixels match that on every value 0..255, a true
division differs on 6% of them, and the training goldens pass with it. One function each way for
NumPy arrays and backend tensors alike (operators only, float32 constants), used by inference
(`inference.to_network` / `from_network`: the RGB image boundary, with the channel flip), training,
the serving model and the flow picture. Channel order is the caller's.
"""
import numpy as np

HALF_RANGE = 127.5  # 0..255 <-> [-1, 1]


def to_network(values):
    """Pixel values 0..255 -> the network's [-1, 1], as the original graph computes `x / 127.5 - 1`.

    Args:
        values: float32 NumPy array or backend tensor, any shape.
    """
    return values * np.float32(1 / HALF_RANGE) - np.float32(1.0)


def from_network(x):
    """The network's [-1, 1] -> pixel values 0..255 (`(x + 1) * 127.5`; neither rounded nor clipped).

    Args:
        x: float32 NumPy array or backend tensor, any shape.
    """
    return (x + np.float32(1.0)) * np.float32(HALF_RANGE)
