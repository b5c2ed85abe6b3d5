"""JAX-only: gradients, compiled inference and training steps (`jax.jit` over stateless calls).

A training step follows keras.io's "training loop from scratch in JAX": every Keras variable the
step touches is passed in as a value and mapped with `keras.StatelessScope`, so the step itself is
a pure function under `jax.jit`; the new values (weights, the spectral-norm `u`, the optimizer's
slots and counter) come back out and are assigned to the Keras variables after the call. The loss
code is the GAN's own (`inpaint.gan.GAN.step_losses`), unchanged.
"""
import contextlib

import jax
import keras
import numpy as np

from inpaint.backends import require_one_device


def input_gradient(fn, x):
    """d sum(fn(x)) / dx with `jax.grad` (differentiable again, as JAX gradients are)."""
    return jax.grad(lambda inputs: fn(inputs).sum())(x)


def _values(variables):
    return [variable.value for variable in variables]


def _assign(variables, values):
    for variable, value in zip(variables, values):
        variable.assign(value)


def compile_function(fn, variables):
    """`jax.jit` of `fn` with `variables` passed in as values (`keras.StatelessScope`), one
    compile per input shape."""
    @jax.jit
    def pure(values, *inputs):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*inputs)

    def run(*inputs):
        return pure(_values(variables), *[jax.numpy.asarray(x) for x in inputs])
    run.tracing_count = lambda: pure._cache_size()  # pylint: disable=protected-access
    return run


class Distribution:
    """One device (several devices train on TensorFlow only)."""

    def __init__(self, config, strategy=None):
        require_one_device(config, strategy)
        self.num_replicas = 1

    def scope(self):
        return contextlib.nullcontext()


class TrainingSteps:
    """Compiled D and G update steps on JAX (see `inpaint.backends.compile_steps`).

    Each step takes the values of all variables it reads (both networks, the optimizer, the
    non-trainable state) and returns the new values of those it changes.
    """

    def __init__(self, distribution, variables, optimizer, losses):
        del distribution  # one device
        self._groups = {**variables, 'optimizer': list(optimizer.variables)}
        self._optimizer = optimizer
        self._losses = losses
        self._steps = {}

    def _build(self, which):
        groups, optimizer, loss_terms = self._groups, self._optimizer, self._losses
        other = 'g' if which == 'd' else 'd'
        all_trainable = list(optimizer._trainable_variables)  # pylint: disable=protected-access

        def step(values, batch, mask):
            def losses(trained):
                mapping = (list(zip(groups[which], trained)) + list(zip(groups[other], values[other]))
                           + list(zip(groups['state'], values['state'])))
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    terms = loss_terms(which, batch, mask)
                state = [scope.get_current_value(v) for v in groups['state']]
                return terms[f'{which}_loss'], (terms, state)

            (_, (terms, state)), grads = jax.value_and_grad(losses, has_aux=True)(values[which])
            # The shared Adam updates only this network's variables (and its one step counter),
            # like the original's `minimize(var_list=...)` on one tf.train.AdamOptimizer.
            current = {id(v): value for v, value in zip(groups[which], values[which])}
            current.update({id(v): value for v, value in zip(groups[other], values[other])})
            mapping = (list(zip(groups['optimizer'], values['optimizer']))
                       + [(v, current[id(v)]) for v in all_trainable])
            with keras.StatelessScope(state_mapping=mapping) as scope:
                optimizer.apply(grads, groups[which])
            terms = dict(terms)
            terms[f'{which}_grad_norm'] = jax.numpy.sqrt(sum((g.astype('float32') ** 2).sum() for g in grads))
            return terms, {
                which: [scope.get_current_value(v) for v in groups[which]],
                'optimizer': [scope.get_current_value(v) for v in groups['optimizer']],
                'state': state,
            }
        return jax.jit(step)

    def _run(self, which, batch, mask):
        if which not in self._steps:
            self._steps[which] = self._build(which)
        groups = self._groups
        values = {name: _values(variables) for name, variables in groups.items()}
        terms, new = self._steps[which](values, np.asarray(batch, np.float32), np.asarray(mask, np.float32))
        for name, new_values in new.items():
            _assign(groups[name], new_values)
        return {name: float(value) for name, value in terms.items()}

    def d_step(self, batch, mask):
        """One discriminator update; returns {name: float}."""
        return self._run('d', batch, mask)

    def g_step(self, batch, mask):
        """One generator update; returns {name: float}."""
        return self._run('g', batch, mask)

    def tracing_counts(self):
        return {f'{which}_step': self._steps[which]._cache_size() if which in self._steps else 0  # pylint: disable=protected-access
                for which in ('d', 'g')}
