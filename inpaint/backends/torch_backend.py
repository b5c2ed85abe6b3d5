"""PyTorch-only: gradients, inference and training steps (eager `torch.autograd`).

Keras variables are torch tensors on this backend, so a step is the GAN's loss code run
eagerly, `torch.autograd.grad` for the gradients, and the shared Keras optimizer's `apply`.
"""
import contextlib

import numpy as np
import torch
from keras import ops

from inpaint.backends import UpdateSteps, require_one_device
from inpaint.config import ConfigError


def input_gradient(fn, x):
    """d sum(fn(x)) / dx with `create_graph=True`, so it can be differentiated again."""
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    return torch.autograd.grad(fn(x).sum(), x, create_graph=True)[0]


def compile_function(fn, variables):
    """`fn` run eagerly under `torch.no_grad()` (no compilation on torch)."""
    del variables

    def run(*inputs):
        with torch.no_grad():
            return fn(*[ops.convert_to_tensor(x) for x in inputs])
    run.tracing_count = lambda: 0
    return run


def join_processes(coordinator=None, num_processes=None, process_id=None):
    """One process only on PyTorch."""
    if coordinator is not None or num_processes not in (None, 1):
        raise ConfigError('--coordinator / --num_processes: training in several processes is '
                          'supported on the JAX and TensorFlow backends; use KERAS_BACKEND=jax')
    return 1


class Distribution:
    """One device in one process (several devices train on JAX and TensorFlow)."""
    num_replicas = local_replicas = process_count = 1
    process_index = 0

    def __init__(self, config, strategy=None):
        require_one_device(config, strategy)

    def scope(self):
        return contextlib.nullcontext()

    def gather(self, values):
        return np.asarray(values, np.uint32).reshape(1, -1)


class TrainingSteps(UpdateSteps):
    """D and G update steps on PyTorch, eager (see `inpaint.backends.compile_steps`)."""

    def __init__(self, distribution, variables, optimizer, losses):
        del distribution  # one device
        self._variables = variables
        self._optimizer = optimizer
        self._losses = losses

    def _run(self, which, batch, mask):
        # On the Keras device (the GPU when there is one), as the variables are.
        batch = ops.convert_to_tensor(np.asarray(batch, np.float32))
        mask = ops.convert_to_tensor(np.asarray(mask, np.float32))
        variables = self._variables[which]
        terms = self._losses(which, batch, mask)
        grads = torch.autograd.grad(terms[f'{which}_loss'], [v.value for v in variables])
        with torch.no_grad():
            self._optimizer.apply(list(grads), variables)
        report = {name: float(value.detach()) for name, value in terms.items()}
        report[f'{which}_grad_norm'] = float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads)))
        return report

    def tracing_counts(self):
        return {'d_step': 0, 'g_step': 0}
