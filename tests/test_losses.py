"""Tests for inpaint/losses.py against NumPy hand computations on seeded random tensors.

Backend-neutral: the losses are `keras.ops`, and the gradient penalty's gradients are taken with
the library's own `inpaint.backends.input_gradient` (so twice-differentiation is checked on every
backend). The compiled paths (`tf.function`, `jax.jit`) are exercised by the training steps in
test_training.py, which call these functions.

Tolerance: float32 means of a few hundred terms of size ~1 carry relative errors of ~1e-6, so
`rtol=1e-5, atol=1e-6` leaves a wide margin while still catching any wrong term or factor.
"""
import keras
import numpy as np
import pytest
from keras import ops

from inpaint import backends, losses

RTOL, ATOL = 1e-5, 1e-6


def close(actual, expected):
    np.testing.assert_allclose(ops.convert_to_numpy(actual), expected, rtol=RTOL, atol=ATOL)


def tensor(x):
    return ops.convert_to_tensor(np.asarray(x, np.float32))


def scores(seed, shape=(4, 16)):
    return np.random.default_rng(seed).normal(scale=2.0, size=shape).astype(np.float32)


def test_hinge_known_values():
    pos = tensor([[2.0, 0.5], [-1.0, 1.0]])  # relu(1 - pos) = 0, 0.5, 2, 0 -> mean 0.625
    neg = tensor([[-2.0, 0.0], [0.5, -0.5]])  # relu(1 + neg) = 0, 1, 1.5, 0.5 -> mean 0.75
    out = losses.hinge_losses(pos, neg)
    close(out['hinge_pos'], 0.625)
    close(out['hinge_neg'], 0.75)
    close(out['d_loss'], 0.5 * 0.625 + 0.5 * 0.75)
    close(out['g_loss'], 0.5)  # -mean(neg) = -(-2 + 0 + 0.5 - 0.5) / 4


def test_hinge_random():
    pos, neg = scores(0), scores(1)
    out = losses.hinge_losses(tensor(pos), tensor(neg))
    hinge_pos = np.maximum(1 - pos, 0).mean()
    hinge_neg = np.maximum(1 + neg, 0).mean()
    close(out['d_loss'], 0.5 * hinge_pos + 0.5 * hinge_neg)
    close(out['g_loss'], -neg.mean())
    assert set(out) == {'g_loss', 'd_loss', 'hinge_pos', 'hinge_neg'}


def test_wgan():
    pos, neg = scores(2), scores(3)
    out = losses.wgan_losses(tensor(pos), tensor(neg))
    close(out['d_loss'], (neg - pos).mean())
    close(out['g_loss'], -neg.mean())
    assert set(out) == {'g_loss', 'd_loss'}


def test_random_interpolates():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(3, 8, 8, 3)).astype(np.float32)
    fake = rng.normal(size=(3, 8, 8, 3)).astype(np.float32)
    alpha = np.array([0.0, 0.25, 1.0], np.float32).reshape(3, 1, 1, 1)
    out = ops.convert_to_numpy(losses.random_interpolates(tensor(real), tensor(fake), tensor(alpha)))
    close(out, real + alpha * (fake - real))
    close(out[0], real[0])
    close(out[2], fake[2])
    # Drawn alphas: one per sample, in [0, 1], so each sample lies on its own segment; a seeded
    # SeedGenerator (what the training step passes) gives the same draw again.
    draw = lambda: ops.convert_to_numpy(losses.random_interpolates(
        tensor(real), tensor(fake), seed=keras.random.SeedGenerator(5)))
    drawn = draw()
    np.testing.assert_array_equal(drawn, draw())
    step = fake - real
    t = (((drawn - real) * step).sum(axis=(1, 2, 3)) / (step**2).sum(axis=(1, 2, 3))).reshape(3, 1, 1, 1)
    close(drawn, real + t * step)
    assert np.all((t >= 0) & (t <= 1)) and len(np.unique(t)) == 3


def linear_critic(w):
    """critic(x) = sum(w * x) per sample, (B, 1); its gradient with respect to x is w."""
    return lambda x: ops.sum(w * x, axis=(1, 2, 3))[:, None]


def test_gradient_penalty_linear_critic():
    rng = np.random.default_rng(6)
    w = rng.normal(scale=0.1, size=(1, 8, 8, 3)).astype(np.float32)
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    mask = (rng.uniform(size=(1, 8, 8, 1)) > 0.5).astype(np.float32)
    critic = linear_critic(tensor(w))
    slopes = np.sqrt((w**2).sum())  # same for every sample
    close(losses.gradient_penalty(critic, tensor(x)), (slopes - 1.0)**2)
    masked = np.sqrt((w**2 * mask).sum())  # ||w * sqrt(mask)||
    close(losses.gradient_penalty(critic, tensor(x), tensor(mask)), (masked - 1.0)**2)
    close(losses.gradient_penalty(critic, tensor(x), tensor(mask), norm=0.5), (masked - 0.5)**2)


def test_gradient_penalty_per_sample_and_sums_outputs():
    # critic(x) = [0.5 * sum(x^2), 0.5 * sum(x^2)]: the gradient of the summed outputs is 2x, so
    # slopes_b = ||2 x_b * sqrt(mask_b)||, different per sample; mask given per sample (B, H, W, 1).
    rng = np.random.default_rng(7)
    x = rng.normal(scale=0.2, size=(3, 6, 6, 3)).astype(np.float32)
    mask = (rng.uniform(size=(3, 6, 6, 1)) > 0.3).astype(np.float32)

    def critic(v):
        energy = 0.5 * ops.sum(ops.square(v), axis=(1, 2, 3))
        return ops.stack([energy, energy], axis=1)  # (B, 2)

    slopes = np.sqrt(((2 * x)**2 * mask).sum(axis=(1, 2, 3)))
    expected = ((slopes - 1.0)**2).mean()
    close(losses.gradient_penalty(critic, tensor(x), tensor(mask)), expected)


def test_gradient_penalty_trains_the_critic():
    # penalty(w) = (||w|| - 1)^2 for a linear critic, so d penalty / d w = 2 (||w|| - 1) w / ||w||:
    # the penalty's own gradient must stay differentiable with respect to the critic's weights.
    rng = np.random.default_rng(8)
    w0 = rng.normal(scale=0.3, size=(1, 4, 4, 2)).astype(np.float32)
    x = tensor(rng.normal(size=(2, 4, 4, 2)))
    penalty = lambda w: losses.gradient_penalty(linear_critic(w), x)
    norm = np.sqrt((w0**2).sum())
    close(penalty(tensor(w0)), (norm - 1.0)**2)
    close(backends.input_gradient(penalty, tensor(w0)), 2 * (norm - 1.0) * w0 / norm)


def test_reconstruction_loss():
    rng = np.random.default_rng(9)
    target, x1, x2 = (rng.uniform(-1, 1, size=(2, 8, 8, 3)).astype(np.float32) for _ in range(3))
    out = losses.reconstruction_loss(tensor(target), tensor(x1), tensor(x2), 1.5)
    close(out, 1.5 * (np.abs(target - x1).mean() + np.abs(target - x2).mean()))


@pytest.mark.parametrize('use_ae_loss, expected', [(True, 2.0 * 0.3 + 0.7), (False, 2.0 * 0.3)])
def test_generator_total(use_ae_loss, expected):
    total = losses.generator_total(tensor(0.3), tensor(0.7), 2.0, use_ae_loss)
    close(total, expected)
