"""The SN-PatchGAN discriminator (`discriminator/sn_patch_gan`)."""
import keras
from keras import ops

from inpaint.layers import SpectralNormConv2D

WIDTHS = (1, 2, 4, 4, 4, 4)  # multiples of cnum for conv1..conv6


class SNPatchGAN(keras.Model):
    """Six 5x5 stride-2 spectral-normalized convs with leaky ReLU (0.2), flattened.

    Args:
        cnum: base width (64 in the release).
        dtype: the Keras dtype policy of every layer (default the global one).
    Call args:
        x: (B, H, W, C), C = 4 for image + mask (`gan_with_mask`), values in [-1, 1].
    Returns:
        (B, ceil(H/64) * ceil(W/64) * 4cnum) patch scores.
    """

    def __init__(self, cnum=64, name='discriminator', dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        # === Config ===
        self.cnum = int(cnum)
        self.convs = [SpectralNormConv2D(m * self.cnum, 5, 2, name=f'conv{i + 1}',
                                         dtype=self.dtype_policy) for i, m in enumerate(WIDTHS)]

    def call(self, x):
        for conv in self.convs:
            x = ops.leaky_relu(conv(x), negative_slope=0.2)
        return ops.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3]))  # row-major NHWC, as tf.contrib's flatten

    def get_config(self):
        return {'cnum': self.cnum, 'name': self.name,
                'dtype': keras.dtype_policies.serialize(self.dtype_policy)}


def build_discriminator(cnum=64, channels=4, dtype=None):
    """Creates an `SNPatchGAN` (`cnum`, `dtype` as its) with its weights built for `channels`
    input channels."""
    discriminator = SNPatchGAN(cnum, dtype=dtype)
    for conv, c_in in zip(discriminator.convs, (channels,) + tuple(m * cnum for m in WIDTHS)):
        conv.build((None, None, None, c_in))
    discriminator.built = True
    return discriminator
