"""What differs between Keras backends, one module each, chosen by `keras.backend.backend()`.

As in Keras' own `backend/{jax,tensorflow,torch}/`: everything else (layers, models, losses, the
training loop) is written once in `keras.ops`; a backend module provides only
- `input_gradient(fn, x)`: d sum(fn(x)) / dx, differentiable again (the WGAN-GP penalty);
- `compile_function(fn, variables)`: `fn` (tensors -> tensors, reading `variables`) compiled
  once per input shape (`compile_inference` runs a model through it, NumPy in and out);
- `TrainingEngine(trainer)`: model-building scope, the number of replicas, and the compiled
  discriminator and generator update steps.
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


def require_one_device(trainer, strategy):
    """Raises ConfigError unless training is on one device (backends without tf.distribute)."""
    if strategy is not None or trainer.config.num_gpus_per_job > 1:
        raise ConfigError('num_gpus_per_job: training on several devices is supported on the '
                          'TensorFlow backend only; set num_gpus_per_job: 1 or '
                          'KERAS_BACKEND=tensorflow', 'num_gpus_per_job')


def training_engine(trainer, strategy=None):
    """The backend's `TrainingEngine` for a `Trainer` (strategy: TensorFlow only)."""
    return current().TrainingEngine(trainer, strategy)
