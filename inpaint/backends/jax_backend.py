"""JAX-only: gradients, compiled inference and training steps (`jax.jit` over stateless calls),
data parallel over a `jax.sharding.Mesh` of every training device of every process.

A training step follows keras.io's "training loop from scratch in JAX": every Keras variable the
step touches is passed in as a value and mapped with `keras.StatelessScope`, so the step itself is
a pure function under `jax.jit`; the new values (weights, the spectral-norm `u`, the optimizer's
slots and counter) come back out and are assigned to the Keras variables after the call. The loss
code is the GAN's own (`inpaint.gan.GAN.step_losses`), unchanged.

Several devices, as JAX's "Distributed arrays and automatic parallelization" and "Multi-process
environments" show it: the batch is one global array sharded along the mesh axis `data`
(`jax.make_array_from_process_local_data`), the variables are replicated, and the one jitted step
computes the whole global batch's losses, so XLA inserts the all-reduce of the gradients; every
device runs the same update. The Keras variables hold this process's first copy (a one-device
array), so that checkpoints, previews and the held-out L1 read them as on one device; the
replicated values are kept between steps and placed again only when a variable was assigned from
outside (a restore, a test).
"""
import contextlib
import errno
import os
import re
import socket

import jax
import keras
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from inpaint.backends import UpdateSteps, peer_lost
from inpaint.config import ConfigError

# What a collective that lost a peer raises (gloo on CPUs, NCCL on GPUs, the coordination service).
_PEER_FAILURE = re.compile(r'gloo|nccl|connection|peer|unavailable|heartbeat|barrier|deadline|'
                           r'socket|closed', re.IGNORECASE)
HEARTBEAT_TIMEOUT_S = 60  # a process silent this long is taken as dead by the coordination service


def join_processes(coordinator=None, num_processes=None, process_id=None):
    """Starts JAX's distributed runtime (`jax.distributed.initialize`), before any other JAX call.

    With `coordinator` ('HOST:PORT', process 0's address), `num_processes` and `process_id`: those.
    Without them: JAX's own auto-detection when a cluster launched this process (SLURM's `srun`
    with more than one task, Open MPI's `mpirun`), else nothing (one process). On CPUs the
    collectives go through gloo (TCP), so that several processes on one machine can train.

    Returns:
        the number of processes.
    Raises:
        ConfigError: incomplete or inconsistent flags, or the runtime could not start (one line).
    """
    given = [value is not None for value in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ConfigError('--coordinator, --num_processes and --process_id go together; give all '
                          'three (or none, to let JAX detect a SLURM or Open MPI launch)')
    launched = (int(os.environ.get('SLURM_NTASKS', os.environ.get('SLURM_NPROCS', '1'))) > 1
                or int(os.environ.get('OMPI_COMM_WORLD_SIZE', '1')) > 1)
    if not any(given) and not launched:
        return 1
    if any(given) and not 0 <= process_id < num_processes:
        raise ConfigError(f'--process_id {process_id}: must be in 0..{num_processes - 1} '
                          f'(--num_processes {num_processes})')
    if process_id == 0:
        _check_port_free(coordinator)
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    where = coordinator or 'the address the cluster gives'
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
    except Exception as error:  # XLA's runtime errors carry no finer type
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f'could not join the other processes through {where} ({first[:200]}); '
                          f'check that the port is free on process 0, that every process has the '
                          f'same --coordinator and --num_processes and its own --process_id') from None
    if num_processes is not None and jax.process_count() != num_processes:
        raise ConfigError(f'--num_processes {num_processes} but the run at {coordinator} has '
                          f'{jax.process_count()} processes; give every process the same count')
    return jax.process_count()


def _check_port_free(coordinator):
    """Raises ConfigError when process 0's coordinator port is taken on this machine.

    Checked before `jax.distributed.initialize`, which on a taken port fails with an RPC error
    or, now and then, crashes the process (seen with jax 0.10 on CPUs: exit -11).
    """
    port = coordinator.rpartition(':')[2]
    if not port.isdigit():
        raise ConfigError(f'--coordinator {coordinator}: give HOST:PORT, e.g. 10.0.0.1:12345')
    for family, address in ((socket.AF_INET6, '::'), (socket.AF_INET, '')):
        try:
            with socket.socket(family) as probe:  # the service listens on every interface
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
                probe.bind((address, int(port)))
            return
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(f'--coordinator {coordinator}: port {port} is already in use on '
                                  f'this machine; give every process another free port') from None
            # no IPv6 here: try IPv4


def input_gradient(fn, x):
    """d sum(fn(x)) / dx with `jax.grad` (differentiable again, as JAX gradients are)."""
    return jax.grad(lambda inputs: fn(inputs).sum())(x)


def _values(variables):
    return [variable.value for variable in variables]


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
    """A `Mesh` (axis 'data') over the first `config.num_gpus_per_job` local devices of every
    process (the GPUs, or the CPU devices where there are none).

    Attributes:
        mesh: the `jax.sharding.Mesh`.
        num_replicas: devices of all processes; local_replicas: this process's.
        process_index, process_count: this process and the number of processes.
    """

    def __init__(self, config, strategy=None):
        if strategy is not None:
            raise ConfigError('a tf.distribute strategy is for the TensorFlow backend only')
        per_process = config.num_gpus_per_job
        local = sorted(jax.local_devices(), key=lambda device: device.id)
        if len(local) < per_process:
            raise ConfigError(
                f'num_gpus_per_job: {per_process} devices requested but this process sees '
                f'{len(local)} ({local[0].platform}); set num_gpus_per_job to at most {len(local)}',
                'num_gpus_per_job')
        self.process_index, self.process_count = jax.process_index(), jax.process_count()
        devices = [device for process in range(self.process_count) for device in sorted(
            (d for d in jax.devices() if d.process_index == process), key=lambda d: d.id)[:per_process]]
        self.mesh = Mesh(np.array(devices), ('data',))
        self.num_replicas, self.local_replicas = len(devices), per_process
        self.local_device = local[0]  # where this process's copy of the variables lives
        self.sharded = NamedSharding(self.mesh, PartitionSpec('data'))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

    def scope(self):
        return contextlib.nullcontext()

    def place_batch(self, batch):
        """This process's (B, ...) part of a global batch -> the global array, sharded on 'data'."""
        return jax.make_array_from_process_local_data(self.sharded, np.asarray(batch))

    def place_masks(self, mask):
        """(M, H, W, 1) masks: one shared by every device when M = 1 on several local devices
        (the same on every process), else this process's part of the global masks, sharded."""
        if mask.shape[0] == 1 and self.local_replicas > 1:
            return self.replicate(mask)
        return self.place_batch(mask)

    def local_copy(self, value):
        """This process's copy of a replicated value (a one-device array on `local_device`)."""
        return next(shard.data for shard in value.addressable_shards
                    if shard.device == self.local_device)

    def replicate(self, value):
        """A value (the same on every process) copied to every device of the mesh."""
        return jax.make_array_from_process_local_data(self.replicated, np.asarray(value))

    def gather(self, values):
        """Every process's `values` (a 1-D uint32 array): (process_count, n) on every process."""
        values = np.asarray(values, np.uint32).reshape(1, -1)
        if self.process_count == 1:
            return values
        with peer_failures(self):
            return np.asarray(multihost_utils.process_allgather(values, tiled=True))


@contextlib.contextmanager
def peer_failures(distribution):
    """Turns a collective's failure in a multi-process run into a one-line `PeerLostError`."""
    try:
        yield
    except Exception as error:  # pylint: disable=broad-except  (XLA's runtime errors have no finer type)
        if distribution.process_count == 1 or not _PEER_FAILURE.search(str(error)):
            raise
        raise peer_lost(distribution, error) from None


class TrainingSteps(UpdateSteps):
    """Compiled D and G update steps on JAX (see `inpaint.backends.compile_steps`).

    Each step takes the values of all variables it reads (both networks, the optimizer, the
    non-trainable state), replicated over the mesh, and the batch sharded along it, and returns
    the new values of those it changes (replicated).
    """

    def __init__(self, distribution, variables, optimizer, losses):
        self._distribution = distribution
        self._groups = {**variables, 'optimizer': list(optimizer.variables)}
        self._optimizer = optimizer
        self._losses = losses
        self._steps = {}
        self._placed = {}  # id(variable) -> (the value it was given, that value replicated)

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
        # Every output replicated: the new values (identical on every device) and the losses.
        return jax.jit(step, out_shardings=self._distribution.replicated)

    def _replicated(self, variable):
        value = variable.value
        placed = self._placed.get(id(variable))
        if placed is not None and placed[0] is value:
            return placed[1]
        return self._distribution.replicate(value)

    def _inputs(self, which, batch, mask):
        """The compiled `which` step and its arguments: (step, values, batch, mask) placed."""
        if which not in self._steps:
            self._steps[which] = self._build(which)
        distribution, groups = self._distribution, self._groups
        values = {name: [self._replicated(v) for v in variables] for name, variables in groups.items()}
        return (self._steps[which], values, distribution.place_batch(batch),
                distribution.place_masks(mask))

    def flops(self, which, batch, mask):
        step, *inputs = self._inputs(which, batch, mask)
        cost = step.lower(*inputs).cost_analysis()  # the HLO's count: nothing is compiled or run
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost['flops']) if cost and 'flops' in cost else None

    def _run(self, which, batch, mask):
        distribution, groups = self._distribution, self._groups
        step, *inputs = self._inputs(which, batch, mask)
        with peer_failures(distribution):
            terms, new = step(*inputs)
            terms = {name: float(distribution.local_copy(value)) for name, value in terms.items()}
        for name, new_values in new.items():
            for variable, value in zip(groups[name], new_values):
                variable.assign(distribution.local_copy(value))
                self._placed[id(variable)] = (variable.value, value)
        return terms

    def tracing_counts(self):
        return {f'{which}_step': self._steps[which]._cache_size() if which in self._steps else 0  # pylint: disable=protected-access
                for which in ('d', 'g')}
