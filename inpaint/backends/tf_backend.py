"""TensorFlow-only: gradients, compiled inference and training steps (`tf.function`, tf.distribute).

The training steps run under a `tf.distribute` strategy: the default one on one device, a
`MirroredStrategy` over `num_gpus_per_job` GPUs, a `MultiWorkerMirroredStrategy` when `TF_CONFIG`
describes several workers. Each replica takes `batch_size` images (the original's towers), and the
per-replica losses are scaled so that the summed gradients equal one device's gradient on the
whole global batch. The loss code is the GAN's own (`inpaint.gan.GAN.step_losses`).
"""
import contextlib
import json
import os

import numpy as np
import tensorflow as tf

from inpaint.backends import UpdateSteps, peer_lost
from inpaint.config import ConfigError

COLLECTIVE_TIMEOUT_S = 60  # a collective waiting longer for another worker fails (no hang)


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


_MULTI_WORKER = []  # the MultiWorkerMirroredStrategy of this process, made by join_processes


def join_processes(coordinator=None, num_processes=None, process_id=None):
    """Several workers on TensorFlow: `TF_CONFIG` (TensorFlow's own convention) makes a
    `MultiWorkerMirroredStrategy` here, before any other TensorFlow op, as it must be.

    Returns:
        the number of workers (1 without TF_CONFIG).
    Raises:
        ConfigError: the JAX-style flags were given, or TF_CONFIG cannot be used.
    """
    if any(value is not None for value in (coordinator, num_processes, process_id)):
        raise ConfigError('--coordinator, --num_processes and --process_id are for the JAX '
                          'backend; on TensorFlow describe the workers in TF_CONFIG')
    if 'TF_CONFIG' not in os.environ:
        return 1
    if not _MULTI_WORKER:
        try:
            cluster = json.loads(os.environ['TF_CONFIG'])
            workers = cluster['cluster']['worker']
            task = cluster['task']
            if task['type'] != 'worker' or not 0 <= int(task['index']) < len(workers):
                raise ValueError('task must be a worker with an index into cluster.worker')
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f'TF_CONFIG: cannot use it ({error}); expected {{"cluster": '
                              f'{{"worker": ["host:port", ...]}}, "task": {{"type": "worker", '
                              f'"index": i}}}}') from None
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT_S)
        _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy(communication_options=options))
    return _MULTI_WORKER[0].num_replicas_in_sync // len(_MULTI_WORKER[0].extended.worker_devices)


class Distribution:
    """A `tf.distribute` strategy: the networks are built in its scope, the steps run under it.

    `MultiWorkerMirroredStrategy` when `join_processes` found TF_CONFIG, else the default
    strategy on one device or a `MirroredStrategy` over `num_gpus_per_job` GPUs.

    Args:
        config: a `Config`; `num_gpus_per_job` picks the strategy when `strategy` is None.
        strategy: a `tf.distribute.Strategy`; None = as above.
    """

    def __init__(self, config, strategy=None):
        if strategy is None and _MULTI_WORKER:
            strategy = _MULTI_WORKER[0]
        self.strategy = strategy if strategy is not None else make_strategy(config.num_gpus_per_job)
        self.num_replicas = self.strategy.num_replicas_in_sync
        multi_worker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.local_replicas = (len(self.strategy.extended.worker_devices) if multi_worker
                               else self.num_replicas)
        self.process_count = self.num_replicas // self.local_replicas
        resolver = getattr(self.strategy, 'cluster_resolver', None)
        self.process_index = int(resolver.task_id or 0) if self.process_count > 1 else 0
        if self.process_count > 1 and self.local_replicas != max(config.num_gpus_per_job, 1):
            raise ConfigError(
                f'num_gpus_per_job: {config.num_gpus_per_job} but each worker trains on its '
                f'{self.local_replicas} devices (MultiWorkerMirroredStrategy takes every visible '
                f'GPU); set num_gpus_per_job: {self.local_replicas} or CUDA_VISIBLE_DEVICES',
                'num_gpus_per_job')

    def scope(self):
        return self.strategy.scope()

    def distribute(self, batch, mask):
        """This process's batch and masks -> per-replica values: each local replica its equal
        share of the images and of the masks (one shared mask stays whole)."""
        first = self.process_index * self.local_replicas
        size = batch.shape[0] // self.local_replicas
        count = mask.shape[0] // self.local_replicas

        def local(context):
            index = context.replica_id_in_sync_group - first
            share = mask if mask.shape[0] == 1 else mask[index * count:(index + 1) * count]
            return tf.constant(batch[index * size:(index + 1) * size]), tf.constant(share)
        return self.strategy.experimental_distribute_values_from_function(local)

    def gather(self, values):
        """Every worker's `values` (a small 1-D uint32 array): (process_count, n)."""
        values = np.asarray(values, np.uint32).reshape(1, -1)
        if self.process_count == 1:
            return values
        with peer_failures(self):
            per_replica = self.strategy.experimental_distribute_values_from_function(
                lambda context: tf.constant(values.astype(np.int64)))
            gathered = self.strategy.gather(per_replica, axis=0).numpy()  # (num_replicas, n)
        return gathered[::self.local_replicas].astype(np.uint32)


@contextlib.contextmanager
def peer_failures(distribution):
    """Turns a collective's failure in a multi-worker run into a one-line `PeerLostError`."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.InternalError, tf.errors.AbortedError) as error:
        if distribution.process_count == 1:
            raise
        raise peer_lost(distribution, error, 'worker') from None


class TrainingSteps(UpdateSteps):
    """Compiled D and G update steps on TensorFlow (see `inpaint.backends.compile_steps`).

    Each replica takes `batch_size` images (its share of this process's batch) and its masks;
    the per-replica losses are divided by the number of replicas, so that the gradients Keras
    sums over replicas are the whole global batch's, as one device would compute them.
    """

    def __init__(self, distribution, variables, optimizer, losses):
        self.distribution = distribution
        self.strategy = distribution.strategy
        self.num_replicas = distribution.num_replicas
        self._variables = variables
        self._optimizer = optimizer
        self._losses = losses
        self._d_step_fn = tf.function(self._d_step_distributed)
        self._g_step_fn = tf.function(self._g_step_distributed)

    def _global_norm(self, grads):
        """Norm of the gradient summed over replicas (an extra all-reduce only with > 1 replica)."""
        if self.num_replicas > 1:
            grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        return tf.linalg.global_norm(grads)

    def _replica_step(self, which, batch, mask):
        variables = self._variables[which]
        with tf.GradientTape() as tape:
            terms = self._losses(which, batch, mask)
            # A mean over this replica's images, divided by the number of replicas (each has
            # the same number): the gradients Keras sums over replicas are the whole batch's.
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

    def _d_step_distributed(self, inputs):
        return self._reduce(self.strategy.run(self._replica_step, args=('d', *inputs)))

    def _g_step_distributed(self, inputs):
        return self._reduce(self.strategy.run(self._replica_step, args=('g', *inputs)))

    def _run(self, which, batch, mask):
        step = self._d_step_fn if which == 'd' else self._g_step_fn
        with peer_failures(self.distribution):
            values = step(self.distribution.distribute(batch, mask))
            return {name: float(value) for name, value in values.items()}

    def tracing_counts(self):
        return {'d_step': self._d_step_fn.experimental_get_tracing_count(),
                'g_step': self._g_step_fn.experimental_get_tracing_count()}
