"""Data-parallel training on several devices and processes (issue 20), on this machine's CPUs.

JAX: one process with 2 virtual CPU devices (`--xla_force_host_platform_device_count=2`) against
one device with the global batch, and two processes on 127.0.0.1 (gloo collectives) against the
2-device process; TensorFlow: two `MultiWorkerMirroredStrategy` workers on loopback against one
worker with the global batch, a mask per image (each worker takes its images' masks, as each
device draws its own in training); `train.py` in two JAX processes stopped by SIGTERM on one of them,
resumed, then one killed. Every run is a subprocess (a process has one backend, one device count,
one distributed runtime), all started from the KERAS_BACKEND=jax session (`jax_session`), the
TensorFlow workers too. The networks are tiny (widths 4, 32x32, 2 iterations); XLA's CPU compiler
runs without its expensive LLVM passes (`conftest.FAST_COMPILE`: about half the compile time, the
same flags on both sides of every comparison) and the JAX runs share a persistent compilation
cache, so that the train.py runs reuse the two-process programs.

Tolerances:
- 2 devices vs 1 device with the global batch, and TensorFlow's 2 workers vs 1: losses and
  weights within 1e-6 absolute. The devices compute the same per-image terms; only the order of
  the float32 sums differs (partial sums per device, then the all-reduce): observed at most
  6e-7 on a weight, 5e-9 on a loss. One Adam step moves a weight by about lr = 1e-4, so a device
  that applied another (or no) update, or a wrongly scaled gradient, would show as ~1e-4.
- 2 processes vs 2 devices in one process: identical (the same program on the same values; an
  all-reduce of two partial sums adds them in either order to the same float).
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import distributed_run
from conftest import REPO, jax_child_env
from test_training import write_images

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, 'distributed_run.py')
ATOL = 1e-6
TIMEOUT_S = 900  # compiling on 2 shared cores; a healthy run takes a minute or two
DEAD_PEER_BOUND_S = 90  # the survivor's exit after its peer died (the heartbeat timeout is 60 s)

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def environment(backend, cache=None, **extra):
    return dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=REPO,
                PYTHONUNBUFFERED='1', **jax_child_env(cache), **extra)


def run_all(commands, envs, folder):
    """Runs the commands side by side; returns their exit codes (stderr in folder/<i>.err)."""
    processes = [subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(folder, f'{index}.err'), 'w'))
                 for index, (command, env) in enumerate(zip(commands, envs))]
    try:
        return [process.wait(timeout=TIMEOUT_S) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def stderr_tail(folder, index):
    with open(os.path.join(folder, f'{index}.err')) as handle:
        return handle.read()[-3000:]


def assert_same(ours, theirs, atol):
    """Every loss and weight of run `ours` equals `theirs` within atol (0 = identical)."""
    assert sorted(ours) == sorted(theirs) and any(key.startswith('w/') for key in ours)
    for key, value in ours.items():
        if atol:
            np.testing.assert_allclose(theirs[key], value, rtol=0, atol=atol, err_msg=key)
        else:
            np.testing.assert_array_equal(theirs[key], value, err_msg=key)


def runs(path):
    """{run name: {'loss/<i>/<name>' or 'w/<name>': value}} of a distributed_run.py output."""
    found = {}
    for key, value in np.load(path).items():
        name, rest = key.split('/', 1)
        found.setdefault(name, {})[rest] = value
    return found


@pytest.fixture(scope='module')
def jax_cache(tmp_path_factory):
    pytest.importorskip('jax')
    return tmp_path_factory.mktemp('jax_cache')


@pytest.fixture(scope='module')
def two_devices(tmp_path_factory, jax_cache):
    """distributed_run.py devices: one device with the global batch, then 2 devices."""
    folder = tmp_path_factory.mktemp('devices')
    out = folder / 'out.npz'
    env = environment('jax', jax_cache)
    env['XLA_FLAGS'] += ' --xla_force_host_platform_device_count=2'
    codes = run_all([[sys.executable, RUN, 'devices', str(out)]], [env], folder)
    assert codes == [0], stderr_tail(folder, 0)
    return {'path': out, **runs(out)}


@pytest.mark.jax_session
def test_two_devices_match_one_device_with_the_global_batch(two_devices):
    one, two = two_devices['one'], two_devices['two']
    assert_same(one, two, ATOL)
    moved = [key for key, value in one.items() if key.startswith('w/')
             and not np.array_equal(value, two_devices['init'][key])]
    assert len(moved) > 200  # the iterations trained (every kernel, bias, `u` and Adam slot)
    # The 2-device GAN's variables hold one device's copy: its generator runs as previews and the
    # held-out L1 run it (weights within 1e-6 give outputs within 1e-4 here).
    np.testing.assert_allclose(two_devices['two_infer']['x2'], two_devices['one_infer']['x2'],
                               rtol=0, atol=1e-4)


@pytest.mark.jax_session
def test_two_processes_match_two_devices(two_devices, jax_cache, tmp_path):
    port, out = free_port(), tmp_path / 'out.npz'
    commands = [[sys.executable, RUN, 'process', str(index), str(port), str(two_devices['path']),
                 str(out)] for index in (0, 1)]
    codes = run_all(commands, [environment('jax', jax_cache)] * 2, tmp_path)
    assert codes == [0, 0], stderr_tail(tmp_path, 0) + stderr_tail(tmp_path, 1)
    assert_same(two_devices['two'], runs(out)['process'], 0)


@pytest.mark.jax_session  # the workers and their reference are TensorFlow child processes
def test_two_tensorflow_workers_match_one_worker_with_the_global_batch(tmp_path):
    pytest.importorskip('tensorflow')
    from inpaint.config import DEFAULT_CONFIG, load_config
    from inpaint.gan import GAN
    one = GAN(load_config(DEFAULT_CONFIG, distributed_run.overrides(1, distributed_run.GLOBAL_BATCH)))
    init, out, single = tmp_path / 'init.npz', tmp_path / 'out.npz', tmp_path / 'single.npz'
    np.savez(init, **{f'init/w/{name}': value for name, value in distributed_run.weights(one).items()})
    workers = [f'127.0.0.1:{free_port()}' for _ in range(2)]
    envs = [environment('tensorflow', TF_CONFIG=(
        f'{{"cluster": {{"worker": ["{workers[0]}", "{workers[1]}"]}}, '
        f'"task": {{"type": "worker", "index": {index}}}}}')) for index in (0, 1)]
    # The reference runs in a fresh process too, as the workers do: not in this one, whose
    # TensorFlow has run the tests before it (its graph rewrites differ: a Grappler remapper
    # failure was logged here in the CI run where 28 discriminator weights differed by 7e-6).
    commands = [[sys.executable, RUN, 'worker', str(index), str(init), str(out)] for index in (0, 1)]
    codes = run_all(commands + [[sys.executable, RUN, 'single', str(init), str(single)]],
                    envs + [environment('tensorflow')], tmp_path)
    assert codes == [0, 0, 0], ''.join(stderr_tail(tmp_path, index) for index in range(3))
    assert_same(runs(single)['single'], runs(out)['worker'], ATOL)


# --- train.py in two processes: stop, resume, a dead peer ----------------------------------------

def train_commands(folder, port):
    """The two train.py command lines of a tiny 2-process JAX run in `folder` (the config of
    distributed_run.py's processes, so that the compiled steps come from the cache)."""
    paths = write_images(os.path.join(folder, 'images'), 6)
    flist = os.path.join(folder, 'train.flist')
    with open(flist, 'w') as handle:
        handle.write('\n'.join(paths))
    overrides = [item for item in distributed_run.overrides(1, 2) if not item.startswith('log_dir')]
    overrides += [f'data_flist.tiny=[{flist}]', 'dataset=tiny', f'log_dir={folder}/log',
                  'random_crop=False', 'max_iters=1000', 'train_spe=1', 'log_steps=1',
                  'val=False', 'num_parallel_calls=1', 'shuffle_buffer=8']
    flags = [arg for item in overrides for arg in ('--set', item)]
    return [[sys.executable, os.path.join(REPO, 'train.py'), *flags, '--coordinator',
             f'127.0.0.1:{port}', '--num_processes', '2', '--process_id', str(index)]
            for index in (0, 1)]


def start(commands, env, folder, run):
    """Starts the two processes; process 0's stdout is read by `saved_step`."""
    return [subprocess.Popen(command, env=env, cwd=REPO, text=True,
                             stdout=subprocess.PIPE if index == 0 else subprocess.DEVNULL,
                             stderr=open(os.path.join(folder, f'{run}-{index}.err'), 'w'))
            for index, command in enumerate(commands)]


def saved_step(process, after):
    """Reads process 0's output until it saved a checkpoint after step `after`.

    Returns:
        (that step, the output read).
    """
    read = ''
    for line in process.stdout:
        read += line
        found = re.search(r'step (\d+): saved ', line)
        if found and int(found.group(1)) > after:
            return int(found.group(1)), read
    raise AssertionError(f'process 0 ended (exit {process.wait()}) without saving after step '
                         f'{after}: {read[-2000:]}')


def last_line(folder, name):
    with open(os.path.join(folder, name)) as handle:
        text = handle.read()
    assert 'Traceback' not in text, text[-3000:]
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ''


@pytest.mark.jax_session
def test_sigterm_stops_every_process_a_dead_one_stops_the_other_and_the_run_resumes(tmp_path, jax_cache):
    """1. SIGTERM to process 1 once process 0 saved step 2: both stop after the same step, with
    one checkpoint of it, exit 130, one line each. 2. The same two commands resume from that
    checkpoint; SIGKILL of process 1 after the next save: process 0 exits 3 within
    DEAD_PEER_BOUND_S with one line naming process 1 and the fix, no traceback. 3. The run's
    checkpoints load for inference (what test.py --checkpoint_dir does)."""
    from inpaint import training_state
    from inpaint.checkpoint import load_models
    env, log_dir = environment('jax', jax_cache), str(tmp_path / 'log')

    processes = start(train_commands(tmp_path, free_port()), env, tmp_path, 'first')
    try:
        _, output = saved_step(processes[0], 1)
        processes[1].send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=TIMEOUT_S) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert codes == [130, 130], (codes, stderr_tail(tmp_path, 'first-0'))
    assert 'on jax, 2 device(s) in 2 process(es), global batch 4 (batch_size 2 x 2)' in output
    lines = [last_line(tmp_path, f'first-{index}.err') for index in (0, 1)]
    stopped = int(re.search(r'interrupted at step (\d+);', lines[0]).group(1))
    checkpoint = training_state.path_for(log_dir, stopped)
    for line in lines:
        assert line == (f'train.py: interrupted at step {stopped}; saved {checkpoint}; run the same '
                        f'command to resume')
    assert training_state.list_checkpoints(log_dir)[-1] == (stopped, checkpoint)

    processes = start(train_commands(tmp_path, free_port()), env, tmp_path, 'second')
    try:
        resumed, output = saved_step(processes[0], stopped)
        assert f'Training steps {stopped}..1000 (resumed from {checkpoint})' in output
        assert resumed == stopped + 1
        processes[1].kill()
        killed = time.monotonic()
        code = processes[0].wait(timeout=DEAD_PEER_BOUND_S)
        elapsed = time.monotonic() - killed
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert code == 3 and elapsed < DEAD_PEER_BOUND_S, (code, stderr_tail(tmp_path, 'second-0'))
    line = last_line(tmp_path, 'second-0.err')
    assert line.startswith('train.py: error: process 0 lost contact with process 1 (') and \
        line.endswith('start all 2 processes again with the same commands to resume from the '
                      'last checkpoint'), line
    _, _, report = load_models(log_dir)
    assert report.format == 'run' and report.prefix == training_state.path_for(
        log_dir, training_state.list_checkpoints(log_dir)[-1][0])


# --- start-up errors -----------------------------------------------------------------------------

def test_agreement_between_processes_is_checked():
    from inpaint.config import ConfigError
    from inpaint.training import _agree

    class TwoProcesses:
        def __init__(self, rows):
            self.rows = np.asarray(rows, np.uint32)

        def gather(self, values):
            return self.rows

    _agree(TwoProcesses([[7], [7]]), [7], 'the configuration', 'fix it')
    with pytest.raises(ConfigError, match=r'^the configuration differs between processes '
                                          r'\(process 1 and process 0\); fix it$'):
        _agree(TwoProcesses([[7], [8]]), [7], 'the configuration', 'fix it')


def test_jax_process_flags_are_checked_before_joining():
    pytest.importorskip('jax')
    from inpaint.backends import jax_backend
    from inpaint.config import ConfigError
    with pytest.raises(ConfigError, match='go together'):
        jax_backend.join_processes('127.0.0.1:1234')
    with pytest.raises(ConfigError, match=r'--process_id 2: must be in 0\.\.1'):
        jax_backend.join_processes('127.0.0.1:1234', 2, 2)
    assert jax_backend.join_processes() == 1  # no flags, no cluster: one process, nothing started


@pytest.mark.jax_session
def test_a_taken_coordinator_port_is_one_line(tmp_path):
    """Process 0 on a port another program holds: exit 2, one line naming the port (before: an RPC
    error, and now and then a crash of JAX's runtime, exit -11, with no line at all)."""
    port = free_port()
    with socket.socket() as holder:
        holder.bind(('127.0.0.1', port))
        holder.listen(1)
        run = subprocess.run(train_commands(tmp_path, port)[0], env=environment('jax'), cwd=REPO,
                             capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.strip().splitlines() == [
        f'train.py: error: --coordinator 127.0.0.1:{port}: port {port} is already in use on this '
        f'machine; give every process another free port']


def test_a_lost_peer_is_named_with_the_cause_not_tensorflows_preamble():
    """TensorFlow's collective errors start 'Graph execution error:' (measured: a killed worker
    gave 'worker 0 lost contact with worker 1 (Graph execution error:)'); the cause is the next
    line that is not a node or a stack line."""
    from inpaint.backends import peer_lost

    class TwoWorkers:
        process_count, process_index = 2, 0

    error = RuntimeError('Graph execution error:\n\nDetected at node CollectiveReduceV2 defined at '
                         '(most recent call last):\n  File "x.py", line 1\n\nSocket closed\n'
                         '\t [[{{node CollectiveReduceV2}}]]')
    assert str(peer_lost(TwoWorkers(), error, 'worker')) == (
        'worker 0 lost contact with worker 1 (Socket closed); if it was stopped or died, start all '
        '2 workers again with the same commands to resume from the last checkpoint')
