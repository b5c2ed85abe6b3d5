"""The SN-PatchGAN discriminator (`discriminator/sn_patch_gan`), conditional on the edge in the
guided mode."""
import keras
from keras import ops

from inpaint.layers import SpectralNormConv2D

WIDTHS = (1, 2, 4, 4, 4, 4)  # multiples of cnum for conv1..conv6


class SNPatchGAN(keras.Model):
    """Six 5x5 stride-2 spectral-normalized convs with leaky ReLU (0.2), flattened.

    Args:
        cnum: base width (64 in the release).
        with_mask: the mask is an input channel (the original's `gan_with_mask`).
        guided: conditional on the edge (the original's `guided`): the hole's edge lines are an
            input channel too, after the mask.
        dtype: the Keras dtype policy of every layer (default the global one).
    Call args:
        x: (B, H, W, C) in [-1, 1] (image) and 0/1 (mask, edge), C = `input_channels`: 3 + 1
            with the mask + 1 guided; `condition` makes it.
    Returns:
        (B, ceil(H/64) * ceil(W/64) * 4cnum) patch scores.
    """

    def __init__(self, cnum=64, with_mask=True, guided=False, name='discriminator', dtype=None,
                 **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        # === Config ===
        self.cnum = int(cnum)
        self.with_mask = bool(with_mask)
        self.guided = bool(guided)
        self.convs = [SpectralNormConv2D(m * self.cnum, 5, 2, name=f'conv{i + 1}',
                                         dtype=self.dtype_policy) for i, m in enumerate(WIDTHS)]

    @property
    def input_channels(self):
        """3 (RGB), + 1 with the mask, + 1 guided (the edge): conv1's input channels."""
        return 3 + self.with_mask + self.guided

    def condition(self, images, mask, edge=None):
        """The discriminator's input, as the original builds it: the images, then the mask
        (`with_mask`), then the edge (`guided`), as channels.

        Args:
            images: (N, H, W, 3), e.g. [real; completed] stacked (N = 2B).
            mask: (1 or B, H, W, 1), 1 = hole; repeated to N as the original tiles it.
            edge: guided only: (B, H, W, 1), the hole's edge lines (`generator.hole_edges`),
                repeated to N as the original's `tile(edge, [2, 1, 1, 1])`.
        Returns:
            (N, H, W, input_channels).
        Raises:
            ValueError: an edge for a discriminator that is not guided, or none for one that is.
        """
        if (edge is not None) != self.guided:
            raise ValueError('a guided discriminator needs the edge' if self.guided else
                             'an edge was given, but this discriminator is not guided')
        parts = [images] + ([mask] if self.with_mask else []) + ([edge] if self.guided else [])
        return ops.concatenate([_repeat(part, images.shape[0]) for part in parts], axis=-1)

    def call(self, x):
        for conv in self.convs:
            x = ops.leaky_relu(conv(x), negative_slope=0.2)
        return ops.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3]))  # row-major NHWC, as tf.contrib's flatten

    def get_config(self):
        return {'cnum': self.cnum, 'with_mask': self.with_mask, 'guided': self.guided,
                'name': self.name, 'dtype': keras.dtype_policies.serialize(self.dtype_policy)}


def _repeat(x, n):
    """(b, H, W, C) -> (n, H, W, C), the batch repeated whole n / b times (`tf.tile`)."""
    return x if x.shape[0] == n else ops.tile(x, (n // x.shape[0], 1, 1, 1))


def build_discriminator(cnum=64, channels=4, guided=False, dtype=None):
    """Creates an `SNPatchGAN` with its weights built for `channels` input channels (3 + 1 with
    the mask + 1 `guided`; a guided one with 4 has no mask channel, as the original with
    `gan_with_mask: False`); `dtype` as `SNPatchGAN`'s.

    Raises:
        ValueError: `channels` is not 3 or 4 (5 guided).
    """
    with_mask = channels - 3 - bool(guided)
    if with_mask not in (0, 1):
        raise ValueError(f'a{" guided" if guided else "n unguided"} discriminator takes '
                         f'{3 + bool(guided)} or {4 + bool(guided)} input channels, not {channels}')
    discriminator = SNPatchGAN(cnum, bool(with_mask), guided, dtype=dtype)
    for conv, c_in in zip(discriminator.convs, (channels,) + tuple(m * cnum for m in WIDTHS)):
        conv.build((None, None, None, c_in))
    discriminator.built = True
    return discriminator
