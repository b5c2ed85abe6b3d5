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
- The input pipeline's position is not checkpointed: a resumed run re-seeds the data order and
  the masks from (seed, step) when `random_seed`, so it is reproducible without replaying the
  steps already done.
"""
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2
from tqdm import tqdm

from inpaint import data as data_lib
from inpaint import losses
from inpaint import masks as masks_lib
from inpaint.checkpoint import (CheckpointError, discriminator_table, generator_table, load_models,
                                training_checkpoint)
from inpaint.config import ConfigError, save_config
from inpaint.discriminator import build_discriminator
from inpaint.generator import build_generator
from inpaint.layers import resize_bilinear

CONFIG_FILE = 'config.yml'
CHECKPOINT_NAME = 'ckpt'
ADAM_EPSILON = 1e-8  # tf.compat.v1.train.AdamOptimizer's default (Keras' default is 1e-7)


def _summary_metadata(plugin, data_class):
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin
    metadata.data_class = data_class
    return metadata.SerializeToString()


# TensorBoard's own summary ops (tf.summary.scalar/image) live in the `tensorboard` package, which
# training does not need; these write the same records with TensorFlow's core `tf.summary.write`.
_SCALAR_METADATA = _summary_metadata('scalars', summary_pb2.DATA_CLASS_SCALAR)
_IMAGE_METADATA = _summary_metadata('images', summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


def write_scalar(tag, value, step):
    """Writes a scalar summary, as `tf.summary.scalar` would, to the default writer."""
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=_SCALAR_METADATA)


def write_images(tag, images, step, max_outputs):
    """Writes an image summary, as `tf.summary.image` would (PNGs), to the default writer.

    Args:
        tag: summary tag.
        images: (N, H, W, 3) float in [0, 1].
        step: int.
        max_outputs: at most this many images are written.
    """
    images = tf.image.convert_image_dtype(images[:max_outputs], tf.uint8, saturate=True)
    pngs = [tf.image.encode_png(image) for image in images]
    height, width = images.shape[1:3]
    tensor = tf.stack([tf.constant(str(width)), tf.constant(str(height))] + pngs)  # TensorBoard's layout
    tf.summary.write(tag, tensor, step=step, metadata=_IMAGE_METADATA)


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or Inf loss; the message names the step, the loss and the kept checkpoint."""


def make_strategy(num_gpus):
    """The default strategy for `num_gpus <= 1`, else a `MirroredStrategy` over the first GPUs.

    Args:
        num_gpus: config `num_gpus_per_job`.
    Returns:
        a `tf.distribute.Strategy`.
    Raises:
        ConfigError: fewer GPUs are visible than requested.
    """
    if num_gpus <= 1:
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices('GPU')
    if len(gpus) < num_gpus:
        raise ConfigError(f'num_gpus_per_job: {num_gpus} GPUs requested but {len(gpus)} visible; '
                          f'set num_gpus_per_job to at most {max(len(gpus), 1)}', 'num_gpus_per_job')
    return tf.distribute.MirroredStrategy([device.name for device in gpus[:num_gpus]])


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
    """Side by side raw | incomplete | complete | offset flow, as RGB in [0, 1] for tf.summary.

    Args:
        x, incomplete, complete: (B, H, W, 3) BGR in [-1, 1].
        flow: (B, H/4, W/4, 3) offset-flow colour image in [-1, 1] (upscaled x4 here, bilinear
            with align_corners as the original's summary).
    Returns:
        (B, H, 4W, 3) RGB in [0, 1].
    """
    flow = resize_bilinear(flow, tf.shape(x)[1:3])
    grid = tf.concat([x, incomplete, complete, flow], axis=2)  # (B, H, 4W, 3)
    return tf.clip_by_value((grid[..., ::-1] + 1.0) / 2.0, 0.0, 1.0)


class Trainer:
    """Trains (or fine-tunes) the generator and the SN-PatchGAN discriminator from a `Config`.

    Construction builds both networks and the optimizer under the strategy's scope and restores
    state: the latest checkpoint in `config.log_dir` if there is one (resume: step, optimizer and
    spectral-norm vectors included), else `config.model_restore` if set (fine-tuning from a
    release or another run: weights only).

    Args:
        config: a `Config`.
        strategy: a `tf.distribute.Strategy`; None = `make_strategy(config.num_gpus_per_job)`.
    Raises:
        ConfigError: not enough GPUs, or batch_size not divisible by the number of replicas.
        CheckpointError: the checkpoint to resume or fine-tune from cannot be used (widths differ,
            damaged files, ...).
        InputError: `val: True` and the static-view images cannot be read.

    Attributes:
        generator, discriminator: the Keras models.
        optimizer: the one Adam both networks share.
        step: int64 tf.Variable, iterations (D step + G step) completed.
        restored_from: checkpoint prefix or release path restored at construction, or None.
    """

    def __init__(self, config, strategy=None):
        self.config = config
        self.strategy = strategy if strategy is not None else make_strategy(config.num_gpus_per_job)
        self.num_replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % self.num_replicas:
            raise ConfigError(f'batch_size: {config.batch_size} images cannot be split evenly over '
                              f'{self.num_replicas} replicas; use a multiple of {self.num_replicas}',
                              'batch_size')
        if config.random_seed:
            keras.utils.set_random_seed(config.seed)  # Python, NumPy and TF: initial weights too
        self.image_size = tuple(config.img_shapes[:2])
        self.d_channels = 4 if config.gan_with_mask else 3
        with self.strategy.scope():
            self.generator = build_generator(config.cnum_generator)
            self.discriminator = build_discriminator(config.cnum_discriminator, self.d_channels)
            # The original passes the same tf.train.AdamOptimizer as g_optimizer and d_optimizer, so
            # its beta1_power/beta2_power (bias correction) advance on both updates of an
            # iteration. One Keras Adam built over both networks' variables does the same: its
            # single `iterations` counter, from which the bias correction is computed, advances on
            # every apply_gradients (2 per iteration); each variable keeps its own m and v.
            self.optimizer = keras.optimizers.Adam(
                learning_rate=config.lr, beta_1=config.beta1, beta_2=config.beta2,
                epsilon=ADAM_EPSILON)
            self.optimizer.build(self.generator.trainable_variables
                                 + self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
        # Keyed by the authors' variable names under `generator` and `discriminator`, which is what
        # inpaint.checkpoint.load_models (and so inference) reads from a log_dir.
        self.checkpoint = training_checkpoint(self.generator, self.discriminator,
                                              optimizer=self.optimizer, step=self.step)
        self.manager = tf.train.CheckpointManager(self.checkpoint, config.log_dir,
                                                  max_to_keep=config.max_to_keep,
                                                  checkpoint_name=CHECKPOINT_NAME)
        self._d_step_fn = tf.function(self._d_step_distributed)
        self._g_step_fn = tf.function(self._g_step_distributed)
        height, width = self.image_size
        self._preview_fn = tf.function(self._preview, input_signature=[
            tf.TensorSpec([None, height, width, 3], tf.float32),
            tf.TensorSpec([None, height, width, 1], tf.float32)])
        self.static_images = self._load_static_views() if config.val else None
        self.restored_from = self._restore()

    # --- state ---------------------------------------------------------------------------------

    def _restore(self):
        """Resumes from log_dir, else loads config.model_restore; returns what was restored."""
        latest = self.manager.latest_checkpoint
        if latest:
            try:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as error:
                raise CheckpointError(
                    f'{latest}: cannot resume from it ({" ".join(str(error).split())[:300]}); it was '
                    f'written with other settings (compare {os.path.join(self.config.log_dir, CONFIG_FILE)}) '
                    f'or is damaged; use another log_dir') from None
            logging.info('Resumed from %s at step %d', latest, int(self.step.numpy()))
            return latest
        if self.config.model_restore:
            self._load_weights(self.config.model_restore)
            return self.config.model_restore
        return None

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
            variable.assign(source[name])
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
            variable.assign(source[name])  # kernels, biases and the spectral-norm `u`
        logging.info('Loaded %d tensors from %s', len(report.loaded), report.prefix)

    def save(self):
        """Writes a checkpoint `<log_dir>/ckpt-<step>`; returns its prefix."""
        return self.manager.save(checkpoint_number=int(self.step.numpy()))

    def _load_static_views(self):
        paths = data_lib.list_images(self.config.val_flist)[:self.config.static_view_size]
        images = [data_lib.center_crop_or_resize(data_lib.decode_bgr(path), self.image_size,
                                                 self.config.random_crop) for path in paths]
        return np.stack(images).astype(np.float32) if images else None

    # --- losses (per replica; plain TF ops) ----------------------------------------------------

    def inpaint(self, x, mask):
        """Runs the generator as training does.

        Args:
            x: (B, H, W, 3) BGR in [-1, 1].
            mask: (1 or B, H, W, 1), 1 = hole.
        Returns:
            dict: x1, x2 (B, H, W, 3), flow (B, H/4, W/4, 3), incomplete, complete (B, H, W, 3).
        """
        incomplete = x * (1.0 - mask)
        x1, x2, flow = self.generator(incomplete, mask)
        complete = x2 * mask + incomplete * (1.0 - mask)
        return {'x1': x1, 'x2': x2, 'flow': flow, 'incomplete': incomplete, 'complete': complete}

    def _with_mask(self, images, mask):
        """Appends the mask as a channel when gan_with_mask: (N, H, W, 3) -> (N, H, W, 4)."""
        if not self.config.gan_with_mask:
            return images
        return tf.concat([images, tf.broadcast_to(mask, tf.shape(images[..., :1]))], axis=-1)

    def discriminate(self, x, complete, mask):
        """One discriminator call on [real; complete] (updates the spectral-norm `u` once).

        Args:
            x, complete: (B, H, W, 3) in [-1, 1]; mask: (1 or B, H, W, 1).
        Returns:
            (pos, neg): scores (B, N) of the real and the completed images.
        """
        mask = tf.broadcast_to(mask, tf.shape(x[..., :1]))  # (B, H, W, 1)
        both = self._with_mask(tf.concat([x, complete], 0), tf.concat([mask, mask], 0))
        return tf.split(self.discriminator(both), 2)

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
        interpolates = losses.random_interpolates(x, complete)
        # A second discriminator call (on the interpolates): `u` takes a second power step here.
        penalty = losses.gradient_penalty(
            lambda images: self.discriminator(self._with_mask(images, mask)), interpolates)
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
        gan_loss = -tf.reduce_mean(neg)  # hinge and WGAN agree on the generator's loss
        ae_loss = losses.reconstruction_loss(x, out['x1'], out['x2'], self.config.l1_loss_alpha)
        total = losses.generator_total(gan_loss, ae_loss, self.config.gan_loss_alpha, self.config.ae_loss)
        return {'g_loss': total, 'g_gan_loss': gan_loss, 'ae_loss': ae_loss}

    # --- steps ---------------------------------------------------------------------------------

    def _local(self, batch, mask):
        """This replica's share of a global batch (and of per-image masks); a (1,...) mask is shared."""
        if self.num_replicas == 1:
            return batch, mask
        index = tf.distribute.get_replica_context().replica_id_in_sync_group
        size = batch.shape[0] // self.num_replicas
        local = batch[index * size:(index + 1) * size]
        local.set_shape([size] + batch.shape[1:])
        if mask.shape[0] != 1:
            mask = mask[index * size:(index + 1) * size]
            mask.set_shape([size] + local.shape[1:3] + [1])
        return local, mask

    def _global_norm(self, grads):
        """Norm of the gradient summed over replicas (an extra all-reduce only with > 1 replica)."""
        if self.num_replicas > 1:
            grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        return tf.linalg.global_norm(grads)

    def _d_replica_step(self, batch, mask):
        batch, mask = self._local(batch, mask)
        x = batch / 127.5 - 1.0
        # The generator runs outside the tape (and its output is cut): the D step cannot reach it.
        complete = tf.stop_gradient(self.inpaint(x, mask)['complete'])
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.discriminator_losses(x, complete, mask)
            # A mean over this replica's equal share of the batch, divided by the number of
            # replicas: the gradients Keras sums over replicas are then the whole batch's.
            loss = terms['d_loss'] / self.num_replicas
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._report(terms, 'd_grad_norm', grads)

    def _g_replica_step(self, batch, mask):
        batch, mask = self._local(batch, mask)
        x = batch / 127.5 - 1.0
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.generator_losses(x, mask)
            loss = terms['g_loss'] / self.num_replicas  # as in the D step
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._report(terms, 'g_grad_norm', grads)

    def _report(self, terms, norm_name, grads):
        """Per-replica values pre-divided by the number of replicas, so that their SUM is the
        whole batch's value (losses are means over equal shares; the norm is the same on all)."""
        report = {name: value / self.num_replicas for name, value in terms.items()}
        report[norm_name] = self._global_norm(grads) / self.num_replicas
        return report

    def _reduce(self, per_replica):
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()}

    def _d_step_distributed(self, batch, mask):
        return self._reduce(self.strategy.run(self._d_replica_step, args=(batch, mask)))

    def _g_step_distributed(self, batch, mask):
        return self._reduce(self.strategy.run(self._g_replica_step, args=(batch, mask)))

    def _check_inputs(self, batch, mask):
        batch = tf.convert_to_tensor(batch, tf.float32)
        mask = tf.convert_to_tensor(mask, tf.float32)
        size = batch.shape[0]
        if (batch.shape.rank != 4 or batch.shape[3] != 3 or size % self.num_replicas
                or mask.shape.rank != 4 or mask.shape[0] not in (1, size)
                or mask.shape[1:] != batch.shape[1:3] + [1]):
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
        return {name: float(value) for name, value in self._d_step_fn(*self._check_inputs(batch, mask)).items()}

    def g_step(self, batch, mask):
        """One generator update (D's weights fixed; its `u` takes one power step, as the original).

        Args and returns as `d_step`, with g_loss, g_gan_loss, ae_loss, g_grad_norm.
        """
        return {name: float(value) for name, value in self._g_step_fn(*self._check_inputs(batch, mask)).items()}

    def tracing_counts(self):
        """How many times each step function has been traced: {'d_step': n, 'g_step': n}."""
        return {'d_step': self._d_step_fn.experimental_get_tracing_count(),
                'g_step': self._g_step_fn.experimental_get_tracing_count()}

    def sample_mask(self, rng):
        """A training mask for one batch: (1, H, W, 1), or (B, H, W, 1) when mask_per_image.

        Args:
            rng: np.random.Generator.
        """
        c = self.config
        count = c.batch_size if c.mask_per_image else 1
        return np.stack([masks_lib.training_mask(
            *self.image_size, c.height, c.width, c.vertical_margin, c.horizontal_margin,
            c.max_delta_height, c.max_delta_width, rng) for _ in range(count)])[..., None]

    def _preview(self, batch, mask):
        x = batch / 127.5 - 1.0
        out = self.inpaint(x, mask)
        return to_summary_images(x, out['incomplete'], out['complete'], out['flow'])

    # --- the loop ------------------------------------------------------------------------------

    def _seed(self, start, purpose):
        """A seed for the data order or the masks of a run (re)started at step `start`."""
        if not self.config.random_seed:
            return None
        return int(np.random.SeedSequence([self.config.seed, start, purpose]).generate_state(1)[0])

    def train(self, max_iters=None):
        """Trains until `step` reaches `max_iters` (default config.max_iters), a total count.

        Writes `config.yml`, summaries and checkpoints (every train_spe steps and at the end) into
        log_dir. A NaN or Inf loss stops the run without saving that state.

        Args:
            max_iters: target step count; None = config.max_iters.
        Returns:
            the final step (int).
        Raises:
            NonFiniteLossError: a loss (or gradient norm) became NaN or Inf.
            InputError: the training images cannot be read.
        """
        c = self.config
        target = c.max_iters if max_iters is None else int(max_iters)
        os.makedirs(c.log_dir, exist_ok=True)
        save_config(c, os.path.join(c.log_dir, CONFIG_FILE))
        start = int(self.step.numpy())
        if start >= target:
            print(f'Step {start} already reaches max_iters {target}; nothing to train.')
            return start
        dataset = data_lib.make_dataset(
            data_lib.list_images(c.train_flist), self.image_size, c.random_crop, c.batch_size,
            shuffle=True, seed=self._seed(start, 0), num_parallel_calls=c.num_parallel_calls,
            shuffle_buffer=c.shuffle_buffer)
        batches = iter(dataset)
        rng = np.random.default_rng(self._seed(start, 1))
        writer = tf.summary.create_file_writer(c.log_dir)
        origin = f'resumed from {self.restored_from}' if start else (
            f'weights from {self.restored_from}' if self.restored_from else 'from scratch')
        print(f'Training steps {start}..{target} ({origin}) on {self.num_replicas} replica(s); '
              f'logs and checkpoints in {c.log_dir}')
        bar = tqdm(initial=start, total=target, unit='step', file=sys.stdout, dynamic_ncols=True,
                   mininterval=1.0)
        step, saved = start, start
        last_time, last_step = time.perf_counter(), start
        try:
            with writer.as_default():
                while step < target:
                    d = self.d_step(next(batches), self.sample_mask(rng))
                    self._check_finite(step + 1, 'discriminator', d)
                    batch, mask = next(batches), self.sample_mask(rng)
                    g = self.g_step(batch, mask)
                    self._check_finite(step + 1, 'generator', g)
                    step += 1
                    self.step.assign(step)
                    bar.update(1)
                    if step % c.log_steps == 0 or step == target:
                        now = time.perf_counter()
                        rate = (step - last_step) / max(now - last_time, 1e-9)
                        last_time, last_step = now, step
                        self._write_scalars(step, d, g, rate)
                        bar.set_postfix({'steps/s': f'{rate:.3g}', 'd_loss': f'{d["d_loss"]:.4g}',
                                         'g_loss': f'{g["g_loss"]:.4g}', 'ae_loss': f'{g["ae_loss"]:.4g}'})
                    if step % c.val_psteps == 0:
                        self._write_images(step, batch, mask)
                    if step % c.train_spe == 0:
                        self._save(bar)
                        saved = step
                if saved != step:
                    self._save(bar)
        finally:
            bar.close()
            writer.close()
        stats = dataset.decode_stats
        if stats.skipped:
            logging.warning('%d unreadable training images were skipped: %s', len(stats.bad_files),
                            sorted(stats.bad_files)[:5])
        print(f'Finished at step {step}; last checkpoint {self.manager.latest_checkpoint}')
        return step

    def _save(self, bar):
        path = self.save()
        logging.info('Saved %s', path)
        bar.write(f'step {int(self.step.numpy())}: saved {path}', file=sys.stdout)

    def _check_finite(self, step, which, values):
        for name, value in values.items():
            if not math.isfinite(value):
                latest = self.manager.latest_checkpoint
                kept = f'the last checkpoint {latest} is kept' if latest else 'no checkpoint was saved'
                raise NonFiniteLossError(
                    f'step {step}: {name} is {value} in the {which} step; stopped without saving '
                    f'this state ({kept}); lower lr or check the data')

    def _write_scalars(self, step, d, g, rate):
        for name, value in {**d, **g}.items():
            group = 'gradients' if name.endswith('grad_norm') else 'losses'
            write_scalar(f'{group}/{name}', value, step)
        write_scalar('optimizer/lr', float(self.optimizer.learning_rate.numpy()), step)
        write_scalar('speed/steps_per_second', rate, step)

    def _write_images(self, step, batch, mask):
        c = self.config
        write_images('raw_incomplete_complete_flow', self._preview_fn(batch, tf.constant(mask)),
                     step, c.viz_max_out)
        if self.static_images is not None:
            views = self._preview_fn(tf.constant(self.static_images), tf.constant(static_view_mask(c)))
            for index in range(views.shape[0]):  # one tag per image, as the original's static_view/i
                write_images(f'static_view/{index}', views[index:index + 1], step, 1)
