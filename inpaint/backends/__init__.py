"""What differs between Keras backends, one module each, chosen by `keras.backend.backend()`.

As in Keras' own `backend/{jax,tensorflow,torch}/`: everything else (layers, models, losses, the
training loop) is written once in `keras.ops`; a backend module provides only
- `input_gradient(fn, x)`: d sum(fn(x)) / dx, differentiable again (the WGAN-GP penalty);
- `compile_function(fn, variables)`: `fn` (tensors -> tensors, reading `variables`) compiled
  once per input shape (`compile_inference` runs a model through it, NumPy in and out);
- `Distribution(config, strategy)`: the devices training runs on (the scope the networks are
  built in, the number of replicas);
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


def require_one_device(config, strategy):
    """Raises ConfigError unless training is on one device (backends without tf.distribute)."""
    if strategy is not None or config.num_gpus_per_job > 1:
        raise ConfigError('num_gpus_per_job: training on several devices is supported on the '
                          'TensorFlow backend only; set num_gpus_per_job: 1 or '
                          'KERAS_BACKEND=tensorflow', 'num_gpus_per_job')


def distribution(config, strategy=None):
    """The backend's `Distribution` for a config: the devices the training steps run on.

    Args:
        config: a `Config` (num_gpus_per_job).
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
        an object with `d_step(batch, mask)`, `g_step(batch, mask)` (NumPy in, {name: float}
        out, `{which}_grad_norm` added) and `tracing_counts()`.
    """
    return current().TrainingSteps(distribution, variables, optimizer, losses)
