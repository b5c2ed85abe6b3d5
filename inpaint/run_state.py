"""A training run's state: the GAN, the step reached, and where it came from; restore, save, rotate.

A run starts from one of three places, checked in this order:
- its own `log_dir`, when it holds `ckpt-<step>.h5` files: resume from the newest intact one (the
  step, both networks, the spectral-norm `u` and Adam's state), after checking that every tensor
  has this config's shape;
- `config.model_restore`: fine-tune from a release, a weights folder or another run (weights only,
  the step starts at 0), after checking the widths and the mode (`guided`);
- otherwise random weights (seeded when `random_seed`).

The file format of the checkpoints is `inpaint.training_state` (which `inpaint.checkpoint` reads
too, so that a run's folder loads for inference); this module is what a training run does with
them.
"""
import os

import keras
import numpy as np
from absl import logging

from inpaint import backends
from inpaint import training_state
from inpaint.checkpoint import (CheckpointError, discriminator_table, generator_table, load_models,
                                model_tensors)
from inpaint.gan import GAN

CONFIG_FILE = 'config.yml'  # the resolved config, written into log_dir by the training loop


class RunState:
    """A training run's GAN and step, restored from log_dir or config.model_restore.

    Args:
        config: a `Config`.
        distribution: the backend's `Distribution` (see `inpaint.backends.distribution`); None =
            from config.num_gpus_per_job.
    Raises:
        ConfigError: the devices asked for are not there.
        CheckpointError: the checkpoint to resume or fine-tune from cannot be used (widths differ,
            damaged files, ...).

    Every process of a multi-process run restores the same state: log_dir must be one folder
    that they all see (process 0 alone writes into it). An unseeded multi-process run takes
    process 0's random seed, so that every process starts from the same weights.

    Attributes:
        config: the `Config`.
        gan: the `GAN` (networks, optimizer, steps).
        step: int, iterations (D step + G step) completed.
        restored_from: the checkpoint or release path restored at construction, or None.
        seed: the seed the run was started with (config.seed, process 0's for an unseeded
            multi-process run), or None (unseeded, one process).
    """

    def __init__(self, config, distribution=None):
        self.config = config
        distribution = distribution or backends.distribution(config)
        self.seed = config.seed if config.random_seed else shared_seed(distribution)
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)  # Python, NumPy and the backend: initial weights too
        self.gan = GAN(config, distribution)
        self.step = 0
        self.restored_from = self._restore()

    def _restore(self):
        """Resumes from log_dir, else loads config.model_restore; returns what was restored."""
        log_dir = self.config.log_dir
        if training_state.list_checkpoints(log_dir):
            try:
                state = training_state.latest_intact(log_dir)
            except training_state.DamagedCheckpointError as error:
                raise CheckpointError(str(error)) from None
            self._assign(state)
            logging.info('Resumed from %s at step %d', state.path, self.step)
            return state.path
        if self.config.model_restore:
            self._load_weights(self.config.model_restore)
            return self.config.model_restore
        return None

    def _assign(self, state):
        """Puts a `TrainingState` into the networks and the optimizer, checking every shape."""
        gan = self.gan
        table = {**generator_table(gan.generator), **discriminator_table(gan.discriminator)}
        variables = gan.optimizer.variables
        problem = None
        if sorted(state.model) != sorted(table):
            problem = 'its tensors differ from this model\'s'
        elif any(tuple(state.model[n].shape) != tuple(v.shape) for n, v in table.items()):
            problem = 'a tensor has another shape (other widths, or the other guided mode?)'
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
        """Copies a release's (or a run's) generator and discriminator weights into the networks."""
        generator, discriminator, report = load_models(path)
        config, gan = self.config, self.gan
        if report.guided != config.guided:
            mode = 'edge-guided' if report.guided else 'not edge-guided'
            raise CheckpointError(
                f'{report.prefix}: it is {mode} but the config has guided: {config.guided}; set '
                f'guided: {report.guided}, or fine-tune from a checkpoint of the same mode')
        if report.generator_cnum != config.cnum_generator:
            raise CheckpointError(
                f'{report.prefix}: its generator width is {report.generator_cnum} but the config has '
                f'cnum_generator {config.cnum_generator}; set cnum_generator: {report.generator_cnum}')
        source = generator_table(generator)
        for name, variable in generator_table(gan.generator).items():
            variable.assign(source[name].value)
        if discriminator is None:
            logging.warning('%s has no discriminator: it starts from random weights', report.prefix)
            return
        channels = int(discriminator.convs[0].kernel.shape[2])
        wanted = int(gan.discriminator.convs[0].kernel.shape[2])
        if report.discriminator_cnum != config.cnum_discriminator or channels != wanted:
            raise CheckpointError(
                f'{report.prefix}: its discriminator has width {report.discriminator_cnum} and '
                f'{channels} input channels but the config has cnum_discriminator '
                f'{config.cnum_discriminator} and gan_with_mask {config.gan_with_mask} '
                f'({wanted} channels); set them to match the checkpoint')
        source = discriminator_table(discriminator)
        for name, variable in discriminator_table(gan.discriminator).items():
            variable.assign(source[name].value)  # kernels, biases and the spectral-norm `u`
        logging.info('Loaded %d tensors from %s', len(report.loaded), report.prefix)

    @property
    def is_chief(self):
        """Whether this process writes the run's files (process 0)."""
        return self.gan.distribution.process_index == 0

    @property
    def latest_checkpoint(self):
        """Path of the newest checkpoint file in log_dir, or None."""
        found = training_state.list_checkpoints(self.config.log_dir)
        return found[-1][1] if found else None

    def save(self):
        """Writes `<log_dir>/ckpt-<step>.h5` and removes the oldest beyond `max_to_keep` (only
        this project's training checkpoints: `training_state.remove_older`).

        Returns:
            the path written.
        Raises:
            CheckpointError: a file that is not one of ours is at that path (one line).
        """
        log_dir, gan = self.config.log_dir, self.gan
        os.makedirs(log_dir, exist_ok=True)
        path = training_state.path_for(log_dir, self.step)
        try:
            training_state.write(
                path, self.step, model_tensors(gan.generator, gan.discriminator),
                [keras.ops.convert_to_numpy(v.value) for v in gan.optimizer.variables],
                [v.path for v in gan.optimizer.variables])
        except training_state.NotOursError as error:
            raise CheckpointError(str(error)) from None
        training_state.remove_older(log_dir, self.config.max_to_keep)
        return path


def shared_seed(distribution):
    """None on one process; else a random seed drawn by process 0, the same on every process."""
    if distribution.process_count == 1:
        return None
    return int(distribution.gather([np.random.SeedSequence().entropy % 2**31])[0, 0])
