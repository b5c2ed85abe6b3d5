"""DeepFill v2's GAN: both networks, the one Adam they share, the losses and the step logic.

One iteration is what the original's `train.py` does (generative_inpainting v2.0.0 with neuralgym's
`SecondaryMultiGPUTrainer` + `MultiGPUTrainer`): one discriminator step, then one generator step,
each on its own batch and its own mask, both with the same Adam optimizer. Per step:

    x = batch / 127.5 - 1                      # BGR in [-1, 1]
    incomplete = x * (1 - mask)
    x1, x2, flow = G(incomplete, mask)
    complete = x2 * mask + incomplete * (1 - mask)
    pos, neg = split(D(concat([x; complete]) ++ mask tiled along channels))
    D step: hinge d_loss (or WGAN + gp_lambda * gradient penalty); G gets no gradient
    G step: gan_loss_alpha * g_loss + l1_loss_alpha * (mean|x - x1| + mean|x - x2|)

Guided (`guided: True`, the original's sketch mode): each image comes with its edge image, whose
lines (`channel 0 / 255 > edge_threshold`) travel as a fourth channel of the batch (`step_batch`);
the step keeps those inside the hole, `edge = lines * mask` (`generator.hole_edges`), which is the
generator's edge input and the discriminator's last condition channel (`discriminator.condition`:
x ++ mask ++ edge, both tiled to [x; complete]), as the original's `build_graph_with_losses`.

The step logic (`GAN.step_losses`) is written once in `keras.ops`; taking its gradients and
compiling the two updates is the backend's (`inpaint.backends.compile_steps`, which receives the
variables, the optimizer and `step_losses`, not this object). The backends split a batch along
its first axis only and pass it through whole, so the guided batch's fourth channel needs only
`step_batch`, `network_inputs` and `_check_inputs` to know it: the same steps, compiled the same
way, train both modes.

Masks: a step takes M masks for a batch of B images, M dividing B; mask i covers the B/M
consecutive images from i * B/M on. M = 1 is the original's one mask per batch, M = B one mask per
image, and M = the number of devices one mask per device, as each of the original's towers drew
its own (the masks are drawn in NumPy, `inpaint.masks`, and fed to the steps as tensors).
"""
import keras
import numpy as np
from keras import ops

from inpaint import backends
from inpaint import losses
from inpaint import masks as masks_lib
from inpaint.discriminator import build_discriminator
from inpaint.generator import build_generator, composite, hole_edges
from inpaint.imageio import above_edge_threshold
from inpaint.pixels import to_network

ADAM_EPSILON = 1e-8  # tf.compat.v1.train.AdamOptimizer's default (Keras' default is 1e-7)


def build_networks(config):
    """The generator and the discriminator of a config; with mixed_precision both are built with
    the 'mixed_bfloat16' policy (float32 weights, bfloat16 compute; attention pinned to float32).

    Returns:
        (generator, discriminator): edge-guided when config.guided; the discriminator takes 3
        channels, + 1 when gan_with_mask, + 1 guided.
    """
    dtype = 'mixed_bfloat16' if config.mixed_precision else None
    channels = 3 + bool(config.gan_with_mask) + bool(config.guided)
    return (build_generator(config.cnum_generator, config.guided, dtype=dtype),
            build_discriminator(config.cnum_discriminator, channels, config.guided, dtype=dtype))


def step_batch(element, config):
    """A data element -> the steps' batch: in the guided mode the edge lines join the images.

    Args:
        element: what `data.make_dataset(..., edges=config.guided)` yields: float32 BGR 0..255
            images (B, H, W, 3), or guided the pair (images, edge images (B, H, W, 3)).
        config: a `Config` (guided, edge_threshold).
    Returns:
        float32 (B, H, W, 3) BGR 0..255, or guided (B, H, W, 4): the images and the lines, 0 or 1,
        of the edge images' channel 0 (`imageio.above_edge_threshold`: the original's
        `edge[..., 0:1] / 255. > edge_threshold`).
    """
    if not config.guided:
        return np.asarray(element, np.float32)
    images, edges = element
    lines = above_edge_threshold(np.asarray(edges)[..., :1], config.edge_threshold)
    return np.concatenate([np.asarray(images, np.float32), lines.astype(np.float32)], axis=-1)


def training_masks(config, count, rng):
    """`count` masks of the original's training kind (box + brush strokes).

    Args:
        config: a `Config` (img_shapes, height, width, margins, max_delta_*).
        count: number of masks.
        rng: np.random.Generator.
    Returns:
        float32 (count, H, W, 1), 1 = hole.
    """
    c = config
    return np.stack([masks_lib.training_mask(
        *c.img_shapes[:2], c.height, c.width, c.vertical_margin, c.horizontal_margin,
        c.max_delta_height, c.max_delta_width, rng) for _ in range(count)])[..., None].astype(np.float32)


def masks_per_image(mask, batch_size):
    """M masks for a batch of `batch_size` images -> one per image (mask i covers the
    batch_size / M consecutive images from i * batch_size / M on); a single mask stays (1, ...).

    Args:
        mask: (M, H, W, 1), M = 1 or dividing batch_size.
    Returns:
        (1 or batch_size, H, W, 1).
    """
    count = mask.shape[0]
    if count in (1, batch_size):
        return mask
    return ops.repeat(mask, batch_size // count, axis=0)


class GAN:
    """The generator, the SN-PatchGAN discriminator, their shared Adam and the D and G steps.

    Args:
        config: a `Config` (widths, gan, loss weights, Adam, seed, masks).
        distribution: the backend's `Distribution` (`backends.distribution`); None = from
            config.num_gpus_per_job. The networks are built in its scope.

    Attributes:
        generator, discriminator: the Keras models.
        optimizer: the one Adam both networks share.
        seed_generator: the WGAN-GP interpolation weights' random state.
        distribution: where the steps run.
        infer: (x in [-1, 1] (B, H, W, 3), mask (1 or B, H, W, 1)) -> NumPy (x1, x2, offsets),
            the generator compiled per shape (previews, held-out L1).
    """

    def __init__(self, config, distribution=None):
        self.config = config
        self.distribution = distribution or backends.distribution(config)
        with self.distribution.scope():
            self.generator, self.discriminator = build_networks(config)
            # The original passes the same tf.train.AdamOptimizer as g_optimizer and d_optimizer, so
            # its beta1_power/beta2_power (bias correction) advance on both updates of an
            # iteration. One Keras Adam built over both networks' variables does the same: its
            # single `iterations` counter, from which the bias correction is computed, advances on
            # every update (2 per iteration); each variable keeps its own m and v.
            self.optimizer = keras.optimizers.Adam(
                learning_rate=config.lr, beta_1=config.beta1, beta_2=config.beta2,
                epsilon=ADAM_EPSILON)
            self.optimizer.build(self.generator.trainable_variables
                                 + self.discriminator.trainable_variables)
            self.seed_generator = keras.random.SeedGenerator(config.seed if config.random_seed else None)
        variables = {
            'd': list(self.discriminator.trainable_variables),
            'g': list(self.generator.trainable_variables),
            'state': (list(self.generator.non_trainable_variables)
                      + list(self.discriminator.non_trainable_variables) + [self.seed_generator.state]),
        }
        self._steps = backends.compile_steps(self.distribution, variables, self.optimizer,
                                             self.step_losses)
        # The generator alone, compiled per shape, NumPy in and out (previews, held-out L1).
        self.infer = backends.compile_inference(self.generator)

    # --- the networks as training uses them (keras.ops) ---------------------------------------

    def network_inputs(self, batch):
        """A steps' batch (`step_batch`; NumPy or tensors) -> (x BGR in [-1, 1] (B, H, W, 3), the
        edge lines (B, H, W, 1), 0/1, guided; else None)."""
        return to_network(batch[..., :3]), (batch[..., 3:] if self.config.guided else None)

    def inpaint(self, x, mask, edge=None):
        """Runs the generator as training does.

        Args:
            x: (B, H, W, 3) BGR in [-1, 1].
            mask: (1 or B, H, W, 1), 1 = hole.
            edge: guided: (B, H, W, 1), the hole's edge lines; else None.
        Returns:
            dict: x1, x2 (B, H, W, 3) float32, offsets (B, H/8, W/8, 2), complete.
        """
        guide = () if edge is None else (edge,)
        x1, x2, offsets = self.generator(x, mask, *guide)  # it zeroes the holes of its input
        x1, x2 = ops.cast(x1, 'float32'), ops.cast(x2, 'float32')  # losses in float32
        return {'x1': x1, 'x2': x2, 'offsets': offsets, 'complete': composite(x, x2, mask)}

    def discriminate(self, x, complete, mask, edge=None):
        """One discriminator call on [real; complete] (updates the spectral-norm `u` once).

        Args:
            x, complete: (B, H, W, 3) in [-1, 1]; mask: (1 or B, H, W, 1).
            edge: guided: (B, H, W, 1), the hole's edge lines; else None.
        Returns:
            (pos, neg): float32 scores (B, N) of the real and the completed images.
        """
        # (2B, H, W, 3 + 1 with gan_with_mask + 1 guided): the mask and the edge tiled to both
        # halves, as the original.
        both = self.discriminator.condition(ops.concatenate([x, complete], 0), mask, edge)
        pos, neg = ops.split(ops.cast(self.discriminator(both), 'float32'), 2)
        return pos, neg

    def discriminator_losses(self, x, complete, mask, edge=None):
        """The discriminator's loss terms on a batch whose completion is given.

        Args:
            x: (B, H, W, 3) real images in [-1, 1].
            complete: (B, H, W, 3) completed images (hold no gradient path to the generator).
            mask: (1 or B, H, W, 1).
            edge: guided: (B, H, W, 1), the hole's edge lines; else None.
        Returns:
            dict of scalars with `d_loss` (the loss to minimize) and its terms: `hinge_pos`,
            `hinge_neg` (sngan) or `wgan_d_loss`, `gp_loss` (wgan_gp).
        """
        pos, neg = self.discriminate(x, complete, mask, edge)
        if self.config.gan == 'sngan':
            terms = losses.hinge_losses(pos, neg)
            return {'d_loss': terms['d_loss'], 'hinge_pos': terms['hinge_pos'],
                    'hinge_neg': terms['hinge_neg']}
        terms = losses.wgan_losses(pos, neg)
        interpolates = losses.random_interpolates(x, complete, seed=self.seed_generator)
        # A second discriminator call (on the interpolates): `u` takes a second power step here.
        penalty = losses.gradient_penalty(
            lambda images: ops.cast(self.discriminator(
                self.discriminator.condition(images, mask, edge)), 'float32'),
            interpolates)
        gp_loss = self.config.gp_lambda * penalty
        return {'d_loss': terms['d_loss'] + gp_loss, 'wgan_d_loss': terms['d_loss'], 'gp_loss': gp_loss}

    def generator_losses(self, x, mask, edge=None):
        """The generator's loss: generator forward, one discriminator call, reconstruction.

        Args:
            x: (B, H, W, 3) real images in [-1, 1]; mask: (1 or B, H, W, 1).
            edge: guided: (B, H, W, 1), the hole's edge lines; else None.
        Returns:
            dict of scalars: `g_loss` (total: gan_loss_alpha * g_gan_loss + ae_loss if ae_loss),
            `g_gan_loss` (adversarial, unweighted) and `ae_loss` (reported even when not used).
        """
        out = self.inpaint(x, mask, edge)
        _, neg = self.discriminate(x, out['complete'], mask, edge)
        gan_loss = -ops.mean(neg)  # hinge and WGAN agree on the generator's loss
        ae_loss = losses.reconstruction_loss(x, out['x1'], out['x2'], self.config.l1_loss_alpha)
        total = losses.generator_total(gan_loss, ae_loss, self.config.gan_loss_alpha, self.config.ae_loss)
        return {'g_loss': total, 'g_gan_loss': gan_loss, 'ae_loss': ae_loss}

    def step_losses(self, which, batch, mask):
        """The loss terms of one discriminator ('d') or generator ('g') step: the step logic that
        every backend differentiates (`{which}_loss` is the one minimized).

        Args:
            which: 'd' or 'g'.
            batch: (B, H, W, 3) BGR 0..255, guided (B, H, W, 4) with the edge lines (`step_batch`).
            mask: (M, H, W, 1), M = 1 or dividing B (see the module docstring).
        Returns:
            dict of scalar tensors (`discriminator_losses` or `generator_losses`).
        """
        x, lines = self.network_inputs(batch)
        mask = masks_per_image(mask, batch.shape[0])
        edge = None if lines is None else hole_edges(lines, mask)  # (B, H, W, 1): G's and D's
        if which == 'd':
            # The completion is cut from the graph: the D step cannot reach the generator.
            complete = ops.stop_gradient(self.inpaint(x, mask, edge)['complete'])
            return self.discriminator_losses(x, complete, mask, edge)
        return self.generator_losses(x, mask, edge)

    # --- steps ---------------------------------------------------------------------------------

    def _check_inputs(self, batch, mask):
        batch = np.asarray(batch, np.float32)
        mask = np.asarray(mask, np.float32)
        size, devices = batch.shape[0], self.distribution.local_replicas
        channels = 3 + bool(self.config.guided)  # guided: the edge lines (`step_batch`)
        if (batch.ndim != 4 or batch.shape[3] != channels or size % devices
                or mask.ndim != 4 or size % mask.shape[0] or (mask.shape[0] != 1 and mask.shape[0] % devices)
                or mask.shape[1:] != batch.shape[1:3] + (1,)):
            raise ValueError(f'expected a batch (B, H, W, {channels}) with B a multiple of {devices} '
                             f'(the devices of this process) and masks (M, H, W, 1) with M = 1 or a '
                             f'multiple of {devices} dividing B, got {batch.shape} and {mask.shape}')
        return batch, mask

    def d_step(self, batch, mask):
        """One discriminator update.

        Args:
            batch: (B, H, W, 3) BGR float32 0..255, this process's images (B = batch_size x its
                devices in training), as `data.make_dataset` yields; guided (B, H, W, 4) with
                the edge lines (`step_batch`).
            mask: (M, H, W, 1) float32, 1 = hole, M = 1 (one mask for every image of every
                device) or a multiple of this process's devices dividing B (module docstring).
        Returns:
            dict of Python floats: d_loss, its terms, d_grad_norm (norm of the whole-batch gradient).
        """
        return self._steps.d_step(*self._check_inputs(batch, mask))

    def g_step(self, batch, mask):
        """One generator update (D's weights fixed; its `u` takes one power step, as the original).

        Args and returns as `d_step`, with g_loss, g_gan_loss, ae_loss, g_grad_norm.
        """
        return self._steps.g_step(*self._check_inputs(batch, mask))

    def step_flops(self, batch, mask):
        """Floating-point operations of one D step + one G step on this batch and mask, as the
        compiler counts them (JAX only; None elsewhere). Args as `d_step`."""
        counts = [self._steps.flops(which, *self._check_inputs(batch, mask)) for which in 'dg']
        return None if None in counts else sum(counts)

    def tracing_counts(self):
        """How many times each step function has been compiled: {'d_step': n, 'g_step': n}."""
        return self._steps.tracing_counts()

    def sample_mask(self, rng):
        """The masks of one step of this process: one per device (each device its own, as the
        original's towers), or one per image when config.mask_per_image; (1, H, W, 1) on one
        device, as the original.

        Args:
            rng: np.random.Generator.
        Returns:
            float32 (M, H, W, 1), M = local devices (x batch_size when mask_per_image).
        """
        devices = self.distribution.local_replicas
        count = self.config.batch_size * devices if self.config.mask_per_image else devices
        return training_masks(self.config, count, rng)
