"""What differs between Keras backends, one module each, chosen by `keras.backend.backend()`.

As in Keras' own `backend/{jax,tensorflow,torch}/`: everything else (layers, models, losses, the
training loop) is written once in `keras.ops`; a backend module provides only
- `input_gradient(fn, x)`: d sum(fn(x)) / dx, differentiable again (the WGAN-GP penalty);
- `compile_function(fn, variables)`: `fn` (tensors -> tensors, reading `variables`) compiled
  once per input shape (`compile_inference` runs a model through it, NumPy in and out);
- `join_processes(coordinator, num_processes, process_id)`: joins a multi-process run (JAX's
  distributed runtime; `TF_CONFIG` on TensorFlow), before anything else touches the backend;
- `Distribution(config, strategy)`: the devices training runs on: the scope the networks are
  built in, `num_replicas` (all devices), `local_replicas` (this process's), `process_index`,
  `process_count`, and `gather(values)` (every process's small uint32 array, for agreeing on
  seeds, configs and stop requests);
- `TrainingSteps(distribution, variables, optimizer, losses)`: the compiled discriminator and
  generator updates of a loss function written in `keras.ops` (`inpaint.gan.GAN.step_losses`).
"""
import importlib

import keras

from inpaint.config import ConfigError

_MODULES = {'tensorflow': 'tf_backend', 'jax': 'jax_backend', 'torch': 'torch_backend'}


def current():
    """The module for the running Keras backend."""
    name = keras.backend.backend()
    if name not in _MODULES:
        raise RuntimeError(f'Keras backend {name!r} is not supported; use tensorflow, jax or torch')
    return importlib.import_module(f'inpaint.backends.{_MODULES[name]}')


def input_gradient(fn, x):
    """Gradient of `sum(fn(x))` with respect to `x`, kept differentiable. x: (B, H, W, C)."""
    return current().input_gradient(fn, x)


def bucket(n, per_octave=8, multiple=1):
    """n rounded up to one of `per_octave` sizes per power of two and to a multiple of `multiple`
    (at most 1/per_octave extra above `multiple * per_octave`), so that varying sizes compile a
    few shapes only. E.g. bucket(300) = 320, bucket(1000) = 1024, bucket(20, multiple=8) = 24."""
    step = max(multiple, 2 ** max(int(n - 1).bit_length() - int(per_octave).bit_length(), 0))
    return -(-n // step) * step


def compile_function(fn, variables):
    """`fn(*tensors)` -> tensors, reading the Keras `variables`, compiled once per input shape.

    The returned function takes NumPy arrays or backend tensors and returns backend tensors; its
    `tracing_count()` says how many shapes it has been compiled for.
    """
    return current().compile_function(fn, list(variables))


def compile_inference(model):
    """A function (*NumPy inputs) -> tuple of NumPy outputs running `model`, compiled per shape."""
    forward = compile_function(model, model.variables)

    def run(*inputs):
        return tuple(keras.ops.convert_to_numpy(output) for output in forward(*inputs))
    run.tracing_count = forward.tracing_count
    return run


class UpdateSteps:
    """The D and G updates of every backend's `TrainingSteps`, through its `_run(which, batch,
    mask)` (which is 'd' or 'g'; see `compile_steps`)."""

    def d_step(self, batch, mask):
        """One discriminator update; returns {name: float}."""
        return self._run('d', batch, mask)

    def g_step(self, batch, mask):
        """One generator update; returns {name: float}."""
        return self._run('g', batch, mask)

    def flops(self, which, batch, mask):
        """The compiler's count of floating-point operations in one `which` ('d' or 'g') update
        of this batch and mask (a benchmark's FLOP per iteration), or None where the backend does
        not count them (only JAX does: XLA's cost analysis of the step, without running it)."""
        del which, batch, mask
        return None


class PeerLostError(RuntimeError):
    """Another process of a multi-process run died or cannot be reached (one-line message)."""


def peer_lost(distribution, error, unit='process'):
    """The `PeerLostError` of a collective that failed with `error` in a multi-process run."""
    text = str(getattr(error, 'message', None) or error).strip()
    # TensorFlow's preamble lines say nothing about the cause: the first other line does.
    preamble = ('Graph execution error', 'Detected at node', 'File "', 'Traceback')
    lines = [line for line in map(str.strip, text.splitlines()) if line and not line.startswith(preamble)]
    text = lines[0] if lines else type(error).__name__
    count, index = distribution.process_count, distribution.process_index
    units = unit + ('es' if unit.endswith('s') else 's')
    peer = f'{unit} {1 - index}' if count == 2 else f'one of the other {count - 1} {units}'
    return PeerLostError(f'{unit} {index} lost contact with {peer} ({text[:160]}); '
                         f'if it was stopped or died, start all {count} {units} again with the '
                         f'same commands to resume from the last checkpoint')


def join_processes(coordinator=None, num_processes=None, process_id=None):
    """Joins this process to a multi-process training run, before any other backend call.

    JAX: `jax.distributed.initialize` from the three arguments (process 0's 'HOST:PORT', the
    number of processes, this one's index), or JAX's auto-detection under SLURM's `srun` / Open
    MPI; TensorFlow: `TF_CONFIG` (the arguments are refused); PyTorch: one process only.

    Returns:
        the number of processes.
    Raises:
        ConfigError: bad arguments or the run could not start (one line).
    """
    return current().join_processes(coordinator, num_processes, process_id)


def require_one_device(config, strategy):
    """Raises ConfigError unless training is on one device in one process (PyTorch)."""
    if strategy is not None or config.num_gpus_per_job > 1:
        raise ConfigError('num_gpus_per_job: training on several devices is supported on the '
                          'TensorFlow and JAX backends only; set num_gpus_per_job: 1 or '
                          'KERAS_BACKEND=jax', 'num_gpus_per_job')


def distribution(config, strategy=None):
    """The backend's `Distribution` for a config: the devices the training steps run on
    (`num_gpus_per_job` of each process).

    Args:
        config: a `Config` (num_gpus_per_job: devices per process).
        strategy: TensorFlow only: a `tf.distribute.Strategy` to use instead.
    Raises:
        ConfigError: the devices asked for are not there.
    """
    return current().Distribution(config, strategy)


def compile_steps(distribution, variables, optimizer, losses):
    """The backend's compiled D and G updates.

    Args:
        distribution: from `distribution()`.
        variables: {'d': the discriminator's trainable variables, 'g': the generator's, 'state':
            the non-trainable ones the losses update (spectral-norm `u`, random seed state)}.
        optimizer: a built Keras optimizer over the 'd' and 'g' variables.
        losses: `losses(which, batch, mask)` -> dict of scalar tensors with `{which}_loss`, in
            `keras.ops` (which is 'd' or 'g'; batch (B, H, W, 3) 0..255, mask (M, H, W, 1)).
    Returns:
        an object with `d_step(batch, mask)`, `g_step(batch, mask)` (NumPy in: this process's
        images, batch_size per local device, and its masks; {name: float} out, the whole global
        batch's values, `{which}_grad_norm` added) and `tracing_counts()`. A collective that lost
        another process raises `PeerLostError`.
    """
    return current().TrainingSteps(distribution, variables, optimizer, losses)
