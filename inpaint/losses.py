"""GAN losses (hinge for SN-PatchGAN, WGAN with gradient penalty) and the reconstruction loss.

The formulas are the original's (generative_inpainting v2.0.0 `inpaint_model.py` and neuralgym
`gan_ops.py`); see REFERENCE.md "Losses and training". All functions are `keras.ops`, so they run
on every backend, eagerly and compiled. Discriminator outputs `pos` (real) and `neg` (completed)
may have any shape; every mean is over all their elements, as in the original.
"""
import keras
from keras import ops

from inpaint import backends


def hinge_losses(pos, neg):
    """Hinge GAN losses of SN-PatchGAN (neuralgym `gan_hinge_loss`).

    Args:
        pos: discriminator outputs on real images, e.g. (B, N).
        neg: discriminator outputs on completed images, same dtype.
    Returns:
        dict of scalars: `d_loss = 0.5 * hinge_pos + 0.5 * hinge_neg`, `g_loss = -mean(neg)`,
        `hinge_pos = mean(relu(1 - pos))`, `hinge_neg = mean(relu(1 + neg))`.
    """
    hinge_pos = ops.mean(ops.relu(1.0 - pos))
    hinge_neg = ops.mean(ops.relu(1.0 + neg))
    return {
        'g_loss': -ops.mean(neg),
        'd_loss': 0.5 * hinge_pos + 0.5 * hinge_neg,
        'hinge_pos': hinge_pos,
        'hinge_neg': hinge_neg,
    }


def wgan_losses(pos, neg):
    """Wasserstein GAN losses (neuralgym `gan_wgan_loss`); add `gradient_penalty` to `d_loss`.

    Args:
        pos: critic outputs on real images, e.g. (B, N).
        neg: critic outputs on completed images.
    Returns:
        dict of scalars: `g_loss = -mean(neg)`, `d_loss = mean(neg - pos)`.
    """
    return {'g_loss': -ops.mean(neg), 'd_loss': ops.mean(neg - pos)}


def random_interpolates(real, fake, alpha=None, seed=None):
    """Points on the lines between real and fake samples: `real + alpha * (fake - real)`.

    Args:
        real: (B, H, W, C).
        fake: (B, H, W, C).
        alpha: (B, 1, 1, 1), one interpolation weight per sample; None draws them from U[0, 1).
        seed: a `keras.random.SeedGenerator` (needed inside a compiled JAX step), or None.
    Returns:
        (B, H, W, C).
    """
    if alpha is None:
        alpha = keras.random.uniform((real.shape[0], 1, 1, 1), dtype=real.dtype, seed=seed)
    return real + alpha * (fake - real)


def gradient_penalty(critic, interpolates, mask=None, norm=1.0):
    """WGAN-GP penalty `mean_b((||grad_b * sqrt(mask)||_2 - norm)^2)` (neuralgym `gradients_penalty`).

    The gradient is that of the sum of the critic's outputs with respect to its input, as
    `tf.gradients` gives in the original; taking it is the one backend-specific part
    (`inpaint.backends.input_gradient`), and it stays differentiable with respect to the critic's
    weights. As in the original there is no epsilon under the square root (a sample whose masked
    gradient is exactly zero would give a NaN weight gradient).

    Args:
        critic: callable (B, H, W, C) -> (B, N), e.g. the discriminator; called once.
        interpolates: (B, H, W, C), usually from `random_interpolates`.
        mask: None (all ones) or a weight broadcastable to (B, H, W, C), e.g. the hole mask
            (1, H, W, 1) or (B, H, W, 1); it multiplies the squared gradient.
        norm: the target gradient norm.
    Returns:
        scalar.
    """
    gradients = backends.input_gradient(critic, interpolates)  # (B, H, W, C)
    squared = ops.square(gradients)
    if mask is not None:
        squared = squared * ops.cast(mask, squared.dtype)
    slopes = ops.sqrt(ops.sum(squared, axis=(1, 2, 3)))  # (B,)
    return ops.mean(ops.square(slopes - norm))


def reconstruction_loss(target, x1, x2, l1_loss_alpha):
    """The original's `ae_loss`: `l1_loss_alpha * (mean|target - x1| + mean|target - x2|)`.

    Means are over all pixels (not only the holes), as in the original.

    Args:
        target: ground truth (B, H, W, 3).
        x1: coarse (stage 1) output (B, H, W, 3).
        x2: refined (stage 2) output (B, H, W, 3).
        l1_loss_alpha: weight (float).
    Returns:
        scalar.
    """
    return l1_loss_alpha * (ops.mean(ops.abs(target - x1)) + ops.mean(ops.abs(target - x2)))


def generator_total(g_loss, ae_loss, gan_loss_alpha, use_ae_loss):
    """The generator's training loss: `gan_loss_alpha * g_loss (+ ae_loss if use_ae_loss)`.

    Args:
        g_loss: adversarial generator loss (scalar), from `hinge_losses` or `wgan_losses`.
        ae_loss: reconstruction loss (scalar), from `reconstruction_loss`.
        gan_loss_alpha: weight of `g_loss` (config `gan_loss_alpha`).
        use_ae_loss: Python bool (config `ae_loss`).
    Returns:
        scalar.
    """
    total = gan_loss_alpha * g_loss
    if use_ae_loss:
        total = total + ae_loss
    return total
