"""Training and fine-tuning DeepFill v2: the `Trainer` (steps, strategy, checkpoints, summaries).

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

Deliberate differences from the original (each also noted where it happens):
- `batch_size` is the global batch, split evenly over the replicas, and the per-replica losses are
  scaled so that the summed gradients equal the single-device gradient on the whole batch: the
  same config gives the same training on any number of devices. (The original's towers each took
  `batch_size` images with a mask of their own and averaged the gradients, so its effective batch
  was `num_gpus * batch_size`; set `batch_size` to that product to match it.)
- Masks are drawn in NumPy from a `np.random.Generator` (`inpaint.masks`), one per batch as the
  original (or one per image with `mask_per_image`), and fed to the step functions as tensors.
- Static views (`val: True`) use the original's fixed box (`build_static_infer_graph`: top =
  height // 2, left = width // 2, size height x width) without the random shrink and without the
  random brush strokes the original's `build_infer_graph` adds on every evaluation, so a view
  shows the same hole at every step and the pictures are comparable over time.
- The input pipeline's position is not checkpointed: a resumed run re-seeds the data order, the
  masks and the WGAN-GP interpolation weights from (seed, step) when `random_seed`, so it is
  reproducible without replaying the steps already done (and it continues exactly as the same
  Trainer would, had it not been stopped).

Backends: the losses and the loop are written once in `keras.ops`; taking gradients and compiling
the two update steps is the backend's (`inpaint.backends`: `tf.function` under a tf.distribute
strategy on TensorFlow, `jax.jit` over stateless calls on JAX, eager autograd on PyTorch).
Checkpoints are `inpaint.training_state` files, readable on every backend; logs are TensorBoard
event files written by `inpaint.summaries`.
"""
import math
import os
import sys
import time

import keras
import numpy as np
from absl import logging
from keras import ops
from tqdm import tqdm

from inpaint import backends
from inpaint import data as data_lib
from inpaint import losses
from inpaint import masks as masks_lib
from inpaint import pixels
from inpaint import training_state
from inpaint.checkpoint import (CheckpointError, discriminator_table, generator_table, load_models,
                                model_tensors)
from inpaint.config import ConfigError, save_config
from inpaint.discriminator import build_discriminator
from inpaint.flow import offset_flow, resize_bilinear
from inpaint.generator import build_generator, composite
from inpaint.interrupt import StopRequest
from inpaint.summaries import EventWriter

CONFIG_FILE = 'config.yml'
ADAM_EPSILON = 1e-8  # tf.compat.v1.train.AdamOptimizer's default (Keras' default is 1e-7)


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or Inf loss; the message names the step, the loss and the kept checkpoint."""


def static_view_mask(config):
    """The static views' hole: the original's fixed box, without random shrink or strokes.

    Args:
        config: a `Config`.
    Returns:
        float32 (1, H, W, 1), 1 = hole, H x W = img_shapes[:2].
    """
    img_height, img_width = config.img_shapes[:2]
    top, left = config.height // 2, config.width // 2
    mask = np.zeros((1, img_height, img_width, 1), np.float32)
    mask[:, top:top + config.height, left:left + config.width, :] = 1.0
    return mask


def to_summary_images(x, incomplete, complete, flow):
    """Side by side raw | incomplete | complete | offset flow, as RGB in [0, 1] for TensorBoard.

    Args:
        x, incomplete, complete: NumPy (B, H, W, 3) BGR in [-1, 1].
        flow: (B, H/4, W/4, 3) offset-flow colour image in [-1, 1] (upscaled x4 here, bilinear
            with align_corners as the original's summary).
    Returns:
        (B, H, 4W, 3) RGB in [0, 1].
    """
    flow = resize_bilinear(flow, x.shape[1:3])
    grid = np.concatenate([x, incomplete, complete, flow], axis=2)  # (B, H, 4W, 3)
    return np.clip((grid[..., ::-1] + 1.0) / 2.0, 0.0, 1.0)


class Trainer:
    """Trains (or fine-tunes) the generator and the SN-PatchGAN discriminator from a `Config`.

    Construction builds both networks and the optimizer and restores state: the newest intact
    checkpoint in `config.log_dir` if there is one (resume: step, optimizer and spectral-norm
    vectors included), else `config.model_restore` if set (fine-tuning from a release, a weights
    folder or another run: weights only).

    Args:
        config: a `Config`.
        strategy: TensorFlow only: a `tf.distribute.Strategy`; None = from `num_gpus_per_job`.
    Raises:
        ConfigError: not enough GPUs, or batch_size not divisible by the number of replicas.
        CheckpointError: the checkpoint to resume or fine-tune from cannot be used (widths differ,
            damaged files, ...).
        InputError: `val: True` and the static-view images cannot be read.

    Attributes:
        generator, discriminator: the Keras models.
        optimizer: the one Adam both networks share.
        step: int, iterations (D step + G step) completed.
        restored_from: checkpoint or release path restored at construction, or None.
    """

    def __init__(self, config, strategy=None):
        self.config = config
        if config.random_seed:
            keras.utils.set_random_seed(config.seed)  # Python, NumPy and the backend: initial weights too
        self.engine = backends.training_engine(self, strategy)
        self.num_replicas = self.engine.num_replicas
        if config.batch_size % self.num_replicas:
            raise ConfigError(f'batch_size: {config.batch_size} images cannot be split evenly over '
                              f'{self.num_replicas} replicas; use a multiple of {self.num_replicas}',
                              'batch_size')
        self.image_size = tuple(config.img_shapes[:2])
        self.d_channels = 4 if config.gan_with_mask else 3
        policy = keras.config.dtype_policy()
        with self.engine.scope():
            if config.mixed_precision:
                keras.config.set_dtype_policy('mixed_bfloat16')  # float32 weights, bfloat16 compute
            try:
                self.generator = build_generator(config.cnum_generator)
                self.discriminator = build_discriminator(config.cnum_discriminator, self.d_channels)
            finally:
                keras.config.set_dtype_policy(policy)
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
        self.step = 0
        self._infer = backends.compile_inference(self.generator)
        self.static_images = self._load_static_views() if config.val else None
        self.heldout = self._load_heldout() if config.heldout_steps else None
        self.restored_from = self._restore()

    # --- state ---------------------------------------------------------------------------------

    def _restore(self):
        """Resumes from log_dir, else loads config.model_restore; returns what was restored."""
        log_dir = self.config.log_dir
        if training_state.list_checkpoints(log_dir):
            try:
                state = training_state.latest_intact(log_dir)
            except training_state.DamagedCheckpointError as error:
                raise CheckpointError(str(error)) from None
            self._assign_state(state)
            logging.info('Resumed from %s at step %d', state.path, self.step)
            return state.path
        if self.config.model_restore:
            self._load_weights(self.config.model_restore)
            return self.config.model_restore
        return None

    def _assign_state(self, state):
        """Puts a `TrainingState` into the models and the optimizer, checking every shape."""
        table = {**generator_table(self.generator), **discriminator_table(self.discriminator)}
        variables = self.optimizer.variables
        problem = None
        if sorted(state.model) != sorted(table):
            problem = 'its tensors differ from this model\'s'
        elif any(tuple(state.model[n].shape) != tuple(v.shape) for n, v in table.items()):
            problem = 'a tensor has another shape (other widths?)'
        elif len(state.optimizer) != len(variables) or any(
                tuple(a.shape) != tuple(v.shape) for a, v in zip(state.optimizer, variables)):
            problem = 'its optimizer state differs from this one\'s'
        if problem:
            raise CheckpointError(
                f'{state.path}: cannot resume from it ({problem}); it was written with other settings '
                f'(compare {os.path.join(self.config.log_dir, CONFIG_FILE)}); use another log_dir')
        for name, variable in table.items():
            variable.assign(state.model[name])
        for variable, value in zip(variables, state.optimizer):
            variable.assign(value)
        self.step = state.step

    def _load_weights(self, path):
        """Copies a release's (or a run's) generator and discriminator weights into the models."""
        generator, discriminator, report = load_models(path)
        config = self.config
        if report.generator_cnum != config.cnum_generator:
            raise CheckpointError(
                f'{report.prefix}: its generator width is {report.generator_cnum} but the config has '
                f'cnum_generator {config.cnum_generator}; set cnum_generator: {report.generator_cnum}')
        source = generator_table(generator)
        for name, variable in generator_table(self.generator).items():
            variable.assign(source[name].value)
        if discriminator is None:
            logging.warning('%s has no discriminator: it starts from random weights', report.prefix)
            return
        channels = int(discriminator.convs[0].kernel.shape[2])
        if report.discriminator_cnum != config.cnum_discriminator or channels != self.d_channels:
            raise CheckpointError(
                f'{report.prefix}: its discriminator has width {report.discriminator_cnum} and '
                f'{channels} input channels but the config has cnum_discriminator '
                f'{config.cnum_discriminator} and gan_with_mask {config.gan_with_mask} '
                f'({self.d_channels} channels); set them to match the checkpoint')
        source = discriminator_table(discriminator)
        for name, variable in discriminator_table(self.discriminator).items():
            variable.assign(source[name].value)  # kernels, biases and the spectral-norm `u`
        logging.info('Loaded %d tensors from %s', len(report.loaded), report.prefix)

    @property
    def latest_checkpoint(self):
        """Path of the newest checkpoint file in log_dir, or None."""
        found = training_state.list_checkpoints(self.config.log_dir)
        return found[-1][1] if found else None

    def save(self):
        """Writes `<log_dir>/ckpt-<step>.h5` (keeping `max_to_keep`); returns its path."""
        os.makedirs(self.config.log_dir, exist_ok=True)
        path = training_state.path_for(self.config.log_dir, self.step)
        training_state.write(path, self.step, model_tensors(self.generator, self.discriminator),
                             [keras.ops.convert_to_numpy(v.value) for v in self.optimizer.variables],
                             [v.path for v in self.optimizer.variables])
        training_state.remove_older(self.config.log_dir, self.config.max_to_keep)
        return path

    def _validation_images(self, count):
        """The first `count` validation images, centre-cropped (or resized) as training sees them:
        float32 (N, H, W, 3) BGR 0..255, or None when the list is empty."""
        paths = data_lib.list_images(self.config.val_flist)[:count]
        images = [data_lib.center_crop_or_resize(data_lib.decode_bgr(path), self.image_size,
                                                 self.config.random_crop) for path in paths]
        return np.stack(images).astype(np.float32) if images else None

    def _load_static_views(self):
        return self._validation_images(self.config.static_view_size)

    def _load_heldout(self):
        """Validation images and one fixed (seeded) training mask each."""
        images = self._validation_images(self.config.heldout_images)
        masks = self._training_masks(len(images), np.random.default_rng(12345))
        return images, masks.astype(np.float32)

    # --- losses (written once, in keras.ops) ---------------------------------------------------

    @staticmethod
    def to_network(batch):
        """BGR 0..255 -> [-1, 1], as the original's `x / 127.5 - 1`."""
        return pixels.to_network(batch)

    def inpaint(self, x, mask):
        """Runs the generator as training does.

        Args:
            x: (B, H, W, 3) BGR in [-1, 1].
            mask: (1 or B, H, W, 1), 1 = hole.
        Returns:
            dict: x1, x2 (B, H, W, 3) float32, offsets (B, H/8, W/8, 2), complete.
        """
        x1, x2, offsets = self.generator(x, mask)  # the generator zeroes the holes of its input
        x1, x2 = ops.cast(x1, 'float32'), ops.cast(x2, 'float32')  # losses in float32
        return {'x1': x1, 'x2': x2, 'offsets': offsets, 'complete': composite(x, x2, mask)}

    def _with_mask(self, images, mask):
        """Appends the mask as a channel when gan_with_mask: (N, H, W, 3) -> (N, H, W, 4)."""
        if not self.config.gan_with_mask:
            return images
        return ops.concatenate([images, ops.broadcast_to(mask, images.shape[:3] + (1,))], axis=-1)

    def discriminate(self, x, complete, mask):
        """One discriminator call on [real; complete] (updates the spectral-norm `u` once).

        Args:
            x, complete: (B, H, W, 3) in [-1, 1]; mask: (1 or B, H, W, 1).
        Returns:
            (pos, neg): float32 scores (B, N) of the real and the completed images.
        """
        mask = ops.broadcast_to(mask, x.shape[:3] + (1,))  # (B, H, W, 1)
        both = self._with_mask(ops.concatenate([x, complete], 0), ops.concatenate([mask, mask], 0))
        pos, neg = ops.split(ops.cast(self.discriminator(both), 'float32'), 2)
        return pos, neg

    def discriminator_losses(self, x, complete, mask):
        """The discriminator's loss terms on a batch whose completion is given.

        Args:
            x: (B, H, W, 3) real images in [-1, 1].
            complete: (B, H, W, 3) completed images (hold no gradient path to the generator).
            mask: (1 or B, H, W, 1).
        Returns:
            dict of scalars with `d_loss` (the loss to minimize) and its terms: `hinge_pos`,
            `hinge_neg` (sngan) or `wgan_d_loss`, `gp_loss` (wgan_gp).
        """
        pos, neg = self.discriminate(x, complete, mask)
        if self.config.gan == 'sngan':
            terms = losses.hinge_losses(pos, neg)
            return {'d_loss': terms['d_loss'], 'hinge_pos': terms['hinge_pos'],
                    'hinge_neg': terms['hinge_neg']}
        terms = losses.wgan_losses(pos, neg)
        interpolates = losses.random_interpolates(x, complete, seed=self.seed_generator)
        # A second discriminator call (on the interpolates): `u` takes a second power step here.
        penalty = losses.gradient_penalty(
            lambda images: ops.cast(self.discriminator(self._with_mask(images, mask)), 'float32'),
            interpolates)
        gp_loss = self.config.gp_lambda * penalty
        return {'d_loss': terms['d_loss'] + gp_loss, 'wgan_d_loss': terms['d_loss'], 'gp_loss': gp_loss}

    def generator_losses(self, x, mask):
        """The generator's loss: generator forward, one discriminator call, reconstruction.

        Args:
            x: (B, H, W, 3) real images in [-1, 1]; mask: (1 or B, H, W, 1).
        Returns:
            dict of scalars: `g_loss` (total: gan_loss_alpha * g_gan_loss + ae_loss if ae_loss),
            `g_gan_loss` (adversarial, unweighted) and `ae_loss` (reported even when not used).
        """
        out = self.inpaint(x, mask)
        _, neg = self.discriminate(x, out['complete'], mask)
        gan_loss = -ops.mean(neg)  # hinge and WGAN agree on the generator's loss
        ae_loss = losses.reconstruction_loss(x, out['x1'], out['x2'], self.config.l1_loss_alpha)
        total = losses.generator_total(gan_loss, ae_loss, self.config.gan_loss_alpha, self.config.ae_loss)
        return {'g_loss': total, 'g_gan_loss': gan_loss, 'ae_loss': ae_loss}

    # --- steps ---------------------------------------------------------------------------------

    def _check_inputs(self, batch, mask):
        batch = np.asarray(batch, np.float32)
        mask = np.asarray(mask, np.float32)
        size = batch.shape[0]
        if (batch.ndim != 4 or batch.shape[3] != 3 or size % self.num_replicas
                or mask.ndim != 4 or mask.shape[0] not in (1, size)
                or mask.shape[1:] != batch.shape[1:3] + (1,)):
            raise ValueError(f'expected a batch (B, H, W, 3) with B a multiple of {self.num_replicas} '
                             f'and a mask (1 or B, H, W, 1), got {batch.shape} and {mask.shape}')
        return batch, mask

    def d_step(self, batch, mask):
        """One discriminator update.

        Args:
            batch: (B, H, W, 3) BGR float32 0..255, as `data.make_dataset` yields.
            mask: (1 or B, H, W, 1) float32, 1 = hole.
        Returns:
            dict of Python floats: d_loss, its terms, d_grad_norm (norm of the whole-batch gradient).
        """
        return self.engine.d_step(*self._check_inputs(batch, mask))

    def g_step(self, batch, mask):
        """One generator update (D's weights fixed; its `u` takes one power step, as the original).

        Args and returns as `d_step`, with g_loss, g_gan_loss, ae_loss, g_grad_norm.
        """
        return self.engine.g_step(*self._check_inputs(batch, mask))

    def tracing_counts(self):
        """How many times each step function has been compiled: {'d_step': n, 'g_step': n}."""
        return self.engine.tracing_counts()

    def sample_mask(self, rng):
        """A training mask for one batch: (1, H, W, 1), or (B, H, W, 1) when mask_per_image.

        Args:
            rng: np.random.Generator.
        """
        return self._training_masks(self.config.batch_size if self.config.mask_per_image else 1, rng)

    def _training_masks(self, count, rng):
        """`count` masks of the original's training kind (box + brush strokes): (count, H, W, 1)."""
        c = self.config
        return np.stack([masks_lib.training_mask(
            *self.image_size, c.height, c.width, c.vertical_margin, c.horizontal_margin,
            c.max_delta_height, c.max_delta_width, rng) for _ in range(count)])[..., None]

    def preview(self, batch, mask):
        """raw | incomplete | complete | flow of a batch (B, H, 4W, 3) RGB in [0, 1], as logged."""
        x = self.to_network(np.asarray(batch, np.float32))
        mask = np.asarray(mask, np.float32)
        _, x2, offsets = self._infer(x, mask)
        return to_summary_images(x, x * (1.0 - mask), composite(x, x2.astype(np.float32), mask),
                                 offset_flow(offsets))

    def heldout_l1(self):
        """Mean |completed - real| inside the holes of the held-out images, in [0, 255] units / 255.

        Returns:
            float, or None without held-out images.
        """
        if self.heldout is None:
            return None
        images, masks = self.heldout
        total, count = 0.0, 0.0
        for start in range(0, len(images), 8):
            x = self.to_network(images[start:start + 8])
            mask = masks[start:start + 8]
            _, x2, _ = self._infer(x, mask)
            total += float((np.abs(x2.astype(np.float32) - x) * mask).sum()) / 2.0  # [-1,1] -> [0,1]
            count += float(mask.sum()) * 3
        return total / max(count, 1.0)

    # --- the loop ------------------------------------------------------------------------------

    def _seed(self, start, purpose):
        """A seed for the data order or the masks of a run (re)started at step `start`."""
        if not self.config.random_seed:
            return None
        return int(np.random.SeedSequence([self.config.seed, start, purpose]).generate_state(1)[0])

    def train(self, max_iters=None):
        """Trains until `step` reaches `max_iters` (default config.max_iters), a total count.

        Writes `config.yml`, summaries and checkpoints (every train_spe steps and at the end) into
        log_dir. A NaN or Inf loss stops the run without saving that state. SIGINT (Ctrl-C) or
        SIGTERM finishes the current step, saves a checkpoint and raises `TrainingInterrupted`.

        Args:
            max_iters: target step count; None = config.max_iters.
        Returns:
            the final step (int).
        Raises:
            NonFiniteLossError: a loss (or gradient norm) became NaN or Inf.
            TrainingInterrupted: a signal stopped the run (after saving).
            InputError: the training images cannot be read.
        """
        c = self.config
        target = c.max_iters if max_iters is None else int(max_iters)
        start = self.step
        if start >= target:
            print(f'Step {start} already reaches max_iters {target}; nothing to train.')
            return start
        dataset = data_lib.make_dataset(
            data_lib.list_images(c.train_flist), self.image_size, c.random_crop, c.batch_size,
            shuffle=True, seed=self._seed(start, 0), num_parallel_calls=c.num_parallel_calls,
            shuffle_buffer=c.shuffle_buffer)
        os.makedirs(c.log_dir, exist_ok=True)
        save_config(c, os.path.join(c.log_dir, CONFIG_FILE))
        rng = np.random.default_rng(self._seed(start, 1))
        if c.random_seed:  # the WGAN-GP interpolation weights, re-seeded as the data and the masks
            state = self.seed_generator.state
            state.assign(np.array([self._seed(start, 2) % 2**31, 0], state.dtype))
        writer = EventWriter(c.log_dir)
        origin = f'resumed from {self.restored_from}' if start else (
            f'weights from {self.restored_from}' if self.restored_from else 'from scratch')
        print(f'Training steps {start}..{target} ({origin}) on {keras.backend.backend()}, '
              f'{self.num_replicas} replica(s); logs and checkpoints in {c.log_dir}')
        bar = tqdm(initial=start, total=target, unit='step', file=sys.stdout, dynamic_ncols=True,
                   mininterval=1.0)
        step, saved = start, start
        last_time, last_step = time.perf_counter(), start
        stop = StopRequest()
        try:
            with dataset, stop:
                while step < target and not stop.requested:
                    d = self.d_step(next(dataset), self.sample_mask(rng))
                    self._check_finite(step + 1, 'discriminator', d)
                    batch, mask = next(dataset), self.sample_mask(rng)
                    g = self.g_step(batch, mask)
                    self._check_finite(step + 1, 'generator', g)
                    step += 1
                    self.step = step
                    bar.update(1)
                    if step % c.log_steps == 0 or step == target:
                        now = time.perf_counter()
                        rate = (step - last_step) / max(now - last_time, 1e-9)
                        last_time, last_step = now, step
                        self._write_scalars(writer, step, d, g, rate)
                        bar.set_postfix({'steps/s': f'{rate:.3g}', 'd_loss': f'{d["d_loss"]:.4g}',
                                         'g_loss': f'{g["g_loss"]:.4g}', 'ae_loss': f'{g["ae_loss"]:.4g}'})
                    if c.heldout_steps and step % c.heldout_steps == 0:
                        l1 = self.heldout_l1()
                        writer.scalar('losses/heldout_l1', l1, step)
                        bar.write(f'step {step}: held-out L1 {l1:.5f}', file=sys.stdout)
                    if step % c.val_psteps == 0:
                        self._write_images(writer, step, batch, mask)
                    if step % c.train_spe == 0:
                        self._save(bar)
                        saved = step
                    writer.flush()
                if saved != step:
                    self._save(bar)
        finally:
            bar.close()
            writer.close()
        stats = dataset.decode_stats
        if stats.skipped:
            logging.warning('%d unreadable training images were skipped: %s', len(stats.bad_files),
                            sorted(stats.bad_files)[:5])
        if stop.requested:
            raise TrainingInterrupted(step, self.latest_checkpoint)
        print(f'Finished at step {step}; last checkpoint {self.latest_checkpoint}')
        return step

    def _save(self, bar):
        path = self.save()
        logging.info('Saved %s', path)
        bar.write(f'step {self.step}: saved {path}', file=sys.stdout)

    def _check_finite(self, step, which, values):
        # The step's loss first, so that the message names it (JAX returns the values by name).
        loss = f'{which[0]}_loss'
        for name in sorted(values, key=lambda name: name != loss):
            value = values[name]
            if not math.isfinite(value):
                latest = self.latest_checkpoint
                kept = f'the last checkpoint {latest} is kept' if latest else 'no checkpoint was saved'
                raise NonFiniteLossError(
                    f'step {step}: {name} is {value} in the {which} step; stopped without saving '
                    f'this state ({kept}); lower lr or check the data')

    def _write_scalars(self, writer, step, d, g, rate):
        for name, value in {**d, **g}.items():
            group = 'gradients' if name.endswith('grad_norm') else 'losses'
            writer.scalar(f'{group}/{name}', value, step)
        writer.scalar('optimizer/lr', float(keras.ops.convert_to_numpy(self.optimizer.learning_rate)), step)
        writer.scalar('speed/steps_per_second', rate, step)

    def _write_images(self, writer, step, batch, mask):
        c = self.config
        writer.images('raw_incomplete_complete_flow', self.preview(batch[:c.viz_max_out], mask[:c.viz_max_out]),
                      step, c.viz_max_out)
        if self.static_images is not None:
            views = self.preview(self.static_images, static_view_mask(c))
            for index in range(views.shape[0]):  # one tag per image, as the original's static_view/i
                writer.images(f'static_view/{index}', views[index:index + 1], step, 1)


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM stopped training after the current step; a checkpoint was saved."""

    def __init__(self, step, checkpoint):
        super().__init__(f'interrupted at step {step}; saved {checkpoint}; run the same command '
                         f'to resume')
        self.step = step
        self.checkpoint = checkpoint
