"""TensorFlow-only: gradients, compiled inference and training steps (`tf.function`, tf.distribute).

The training steps run under a `tf.distribute` strategy (the default one on one device, a
`MirroredStrategy` over `num_gpus_per_job` GPUs): `batch_size` is the global batch, split evenly,
and the per-replica losses are scaled so that the summed gradients equal the single-device
gradient on the whole batch. The loss code is the GAN's own (`inpaint.gan.GAN.step_losses`).
"""
import keras
import numpy as np
import tensorflow as tf

from inpaint.config import ConfigError


def input_gradient(fn, x):
    """d sum(fn(x)) / dx, recorded by an enclosing tape (so it can be differentiated again)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x)


def compile_function(fn, variables):
    """`fn` as a tf.function (it reads `variables` directly), one trace per input shape."""
    del variables  # a tf.function captures the variables it reads
    traced = tf.function(fn, reduce_retracing=False)

    def run(*inputs):
        return traced(*[tf.convert_to_tensor(x) for x in inputs])
    run.tracing_count = traced.experimental_get_tracing_count
    return run


def make_strategy(num_gpus):
    """The default strategy for `num_gpus <= 1`, else a `MirroredStrategy` over the first GPUs.

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


class Distribution:
    """A `tf.distribute` strategy: the networks are built in its scope, the steps run under it.

    Args:
        config: a `Config`; `num_gpus_per_job` picks the strategy when `strategy` is None.
        strategy: a `tf.distribute.Strategy`; None = `make_strategy(config.num_gpus_per_job)`.
    """

    def __init__(self, config, strategy=None):
        self.strategy = strategy if strategy is not None else make_strategy(config.num_gpus_per_job)
        self.num_replicas = self.strategy.num_replicas_in_sync

    def scope(self):
        return self.strategy.scope()


class TrainingSteps:
    """Compiled D and G update steps on TensorFlow (see `inpaint.backends.compile_steps`).

    `batch_size` is the global batch, split evenly over the replicas, and the per-replica losses
    are scaled so that the summed gradients equal the single-device gradient on the whole batch.
    """

    def __init__(self, distribution, variables, optimizer, losses):
        self.strategy = distribution.strategy
        self.num_replicas = distribution.num_replicas
        self._variables = variables
        self._optimizer = optimizer
        self._losses = losses
        self._d_step_fn = tf.function(self._d_step_distributed)
        self._g_step_fn = tf.function(self._g_step_distributed)

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

    def _replica_step(self, which, batch, mask):
        batch, mask = self._local(batch, mask)
        variables = self._variables[which]
        with tf.GradientTape() as tape:
            terms = self._losses(which, batch, mask)
            # A mean over this replica's equal share of the batch, divided by the number of
            # replicas: the gradients Keras sums over replicas are then the whole batch's.
            loss = terms[f'{which}_loss'] / self.num_replicas
        grads = tape.gradient(loss, variables)
        self._optimizer.apply_gradients(zip(grads, variables))
        # Per-replica values pre-divided, so that their SUM is the whole batch's value.
        report = {name: value / self.num_replicas for name, value in terms.items()}
        report[f'{which}_grad_norm'] = self._global_norm(grads) / self.num_replicas
        return report
    def _reduce(self, per_replica):
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()}

    def _d_step_distributed(self, batch, mask):
        return self._reduce(self.strategy.run(self._replica_step, args=('d', batch, mask)))

    def _g_step_distributed(self, batch, mask):
        return self._reduce(self.strategy.run(self._replica_step, args=('g', batch, mask)))

    def d_step(self, batch, mask):
        """One discriminator update; returns {name: float}."""
        values = self._d_step_fn(tf.constant(batch), tf.constant(mask))
        return {name: float(value) for name, value in values.items()}

    def g_step(self, batch, mask):
        """One generator update; returns {name: float}."""
        values = self._g_step_fn(tf.constant(batch), tf.constant(mask))
        return {name: float(value) for name, value in values.items()}

    def tracing_counts(self):
        return {'d_step': self._d_step_fn.experimental_get_tracing_count(),
                'g_step': self._g_step_fn.experimental_get_tracing_count()}
