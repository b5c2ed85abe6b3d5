"""Shared test helpers: the golden fixtures, the shared folder, and a generic Keras layer check.

Every test runs on the Keras backend of `KERAS_BACKEND` (tensorflow, jax or torch); a test that
only makes sense on TensorFlow is marked `@pytest.mark.tf_only` and skipped elsewhere; one whose
work is in child processes that pick their own backend is marked `jax_session` and runs in the
JAX session only (the lighter of `make test`'s two).
"""
import contextlib
import importlib.util
import os

import keras
import numpy as np
import pytest
from keras import ops

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The shared folder sits next to the repository (../shared), wherever it is checked out. Its
# golden/ holds the original graph's outputs; the parity data (intermediates, the training
# goldens, the largest case) is read from there only (`shared_path`, `golden_case`,
# `golden_intermediates`): tests/data keeps small copies of what the tests without ../shared use
# (checkpoints, the pictures of two cases, the attention and discriminator goldens).
SHARED = os.path.normpath(os.path.join(REPO, '..', 'shared'))
SHARED_GOLDEN = os.path.join(SHARED, 'golden', 'small')
GOLDEN = os.path.join(HERE, 'data', 'golden_small')  # the small part of ../shared/golden/small
CASES = ('rocket256', 'motorcycle184x264', 'coffee400x600')
GOLDEN_CHECKPOINT = os.path.join(GOLDEN, 'checkpoint_dir')  # TF1, as the original wrote it
# The same weights in the backend-neutral format (python -m inpaint.commands.convert
# tests/data/golden_small/checkpoint_dir tests/data/golden_small/weights), for machines without
# TensorFlow.
GOLDEN_WEIGHTS = os.path.join(GOLDEN, 'weights')
HAS_TENSORFLOW = importlib.util.find_spec('tensorflow') is not None
# The edge-guided golden (../shared/golden/guided_small/infer): its TF1 checkpoint and the same
# weights converted (python -m inpaint.commands.convert), as above, and its cases' pictures.
GUIDED_GOLDEN = os.path.join(HERE, 'data', 'golden_guided_small')
GUIDED_CHECKPOINT = os.path.join(GUIDED_GOLDEN, 'checkpoint_dir')
GUIDED_WEIGHTS = os.path.join(GUIDED_GOLDEN, 'weights')
# A golden of ../shared/golden -> its copy in tests/data.
COPIES = {'small': GOLDEN, 'guided_small/infer': GUIDED_GOLDEN}

# The golden README's tolerances for x_stage1 / x_stage2.
STAGE_MAX, STAGE_MEAN = 1e-3, 1e-5

# XLA's CPU compiler without its expensive LLVM passes: about half the compile time, for JAX child
# processes whose tests check paths and agreement, not speed.
FAST_COMPILE = '--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true'


def pytest_collection_modifyitems(config, items):
    """Skips `tf_only` tests on other backends, and `jax_session` tests (work in child processes
    that pick their own backend, whatever this session's) outside the KERAS_BACKEND=jax session,
    so that `make test`'s two sessions share the work."""
    backend = keras.backend.backend()
    skip_tf_only = pytest.mark.skip(reason=f'TensorFlow backend only (running on {backend}); run '
                                           f'with KERAS_BACKEND=tensorflow')
    skip_jax_session = pytest.mark.skip(reason='its work is in child processes: run once, in '
                                               'the KERAS_BACKEND=jax session (make test-jax)')
    for item in items:
        if 'tf_only' in item.keywords and backend != 'tensorflow':
            item.add_marker(skip_tf_only)
        if 'jax_session' in item.keywords and backend != 'jax':
            item.add_marker(skip_jax_session)


def jax_child_env(cache=None):
    """Environment entries for JAX child processes: fast XLA compiles (`FAST_COMPILE`) and, with a
    `cache` folder, JAX's persistent compilation cache there for every program, however quick to
    compile (a program compiled again, in this process or another, is read back)."""
    env = {'XLA_FLAGS': FAST_COMPILE}
    if cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')
    return env


def shared_path(*parts):
    """`../shared/<parts>` next to the repository; skips the calling test when it is absent."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f'{path} is absent: this test needs the shared folder ../shared next to the '
                    f'repository ({REPO})')
    return path


@pytest.fixture(scope='session')
def shared():
    """The shared folder `../shared` (the test is skipped when it is absent)."""
    return shared_path()


def folder_state(folder):
    """{relative path: bytes} of every file under `folder` (to show that nothing changed)."""
    state = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, 'rb') as handle:
                state[os.path.relpath(path, folder)] = handle.read()
    return state


def golden_case(name, golden='small'):
    """Paths of one golden case's pictures: 'input', 'mask', 'output' (and 'edge' where the case
    has one), from the copy in tests/data where the case is copied, else from
    ../shared/golden/<golden> (the test is skipped when it is absent).

    Args:
        name: the case, e.g. 'rocket256'.
        golden: 'small' or 'guided_small/infer'.
    """
    folder = os.path.join(COPIES[golden], name)
    if not os.path.isdir(folder):
        folder = shared_path('golden', *golden.split('/'), name)
    paths = {key: os.path.join(folder, f'{key}.png') for key in ('input', 'mask', 'output', 'edge')}
    return {key: path for key, path in paths.items() if key != 'edge' or os.path.exists(path)}


def golden_intermediates(name, golden='small'):
    """{'x_stage1', 'x_stage2', 'offset_flow'} of one golden case as NumPy arrays, read from
    ../shared/golden/<golden>/<name>/intermediates.npz (the test is skipped when it is absent).

    Args:
        name: the case, e.g. 'rocket256'.
        golden: 'small' or 'guided_small/infer'.
    """
    with np.load(shared_path('golden', *golden.split('/'), name, 'intermediates.npz')) as data:
        return dict(data)


# Damaged copies of the golden checkpoint (`damaged_checkpoint`): kind -> (source, damaged file).
DAMAGED_KINDS = {
    'truncated_data': ('checkpoint_dir', 'snap-0.data-00000-of-00001'),
    'flipped_data': ('checkpoint_dir', 'snap-0.data-00000-of-00001'),
    'binary_state': ('checkpoint_dir', 'checkpoint'),
    'truncated_h5': ('weights', 'generator.weights.h5'),
}


def damaged_checkpoint(folder, kind):
    """A copy of the golden checkpoint in `folder` with one file damaged; returns its path.

    Kinds (`DAMAGED_KINDS`): 'truncated_data' (the TF1 .data file cut in half), 'flipped_data'
    (one bit flipped inside a tensor), 'binary_state' (binary bytes where the text `checkpoint`
    state file should be), 'truncated_h5' (the neutral generator.weights.h5 cut in half).
    """
    import shutil
    source, name = DAMAGED_KINDS[kind]
    path = os.path.join(folder, 'damaged_' + kind)
    shutil.copytree(os.path.join(GOLDEN, source), path)
    damaged = os.path.join(path, name)
    with open(damaged, 'rb') as handle:
        data = bytearray(handle.read())
    if kind == 'binary_state':
        data = bytearray(bytes(range(256)) * 4)
    elif kind == 'flipped_data':
        data[len(data) // 2] ^= 0x10
    else:
        data = data[:len(data) // 2]
    with open(damaged, 'wb') as handle:
        handle.write(bytes(data))
    return path


def to_numpy(x):
    """A backend tensor or Keras variable -> NumPy array."""
    return np.asarray(ops.convert_to_numpy(x.value if isinstance(x, keras.Variable) else x))


def _first(outputs):
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def weight_gradients(layer, inputs, seed=0):
    """Gradients of `sum(first output * fixed noise)` for `layer.trainable_weights`, as NumPy.

    The one place where the test suite takes gradients, one branch per backend.
    """
    inputs = [ops.convert_to_tensor(x) for x in inputs]
    shape = tuple(_first(layer(*inputs)).shape)
    noise = ops.convert_to_tensor(np.random.default_rng(seed).normal(size=shape).astype(np.float32))
    loss = lambda outputs: ops.sum(_first(outputs) * noise)
    backend = keras.backend.backend()
    if backend == 'tensorflow':
        import tensorflow as tf
        with tf.GradientTape() as tape:
            value = loss(layer(*inputs))
        grads = tape.gradient(value, layer.trainable_weights)
    elif backend == 'jax':
        import jax
        non_trainable = [v.value for v in layer.non_trainable_variables]
        grads = jax.grad(lambda trainable: loss(layer.stateless_call(
            trainable, non_trainable, *inputs)[0]))([v.value for v in layer.trainable_variables])
    elif backend == 'torch':
        import torch
        grads = torch.autograd.grad(loss(layer(*inputs)), [v.value for v in layer.trainable_weights],
                                    allow_unused=True)
    else:
        raise NotImplementedError(f'no gradient helper for the {backend} backend')
    return [None if g is None else to_numpy(g) for g in grads]


def check_layer(layer, inputs, expected_shape):
    """Config round trip, eager call, output shape, a non-zero gradient for every trainable weight.

    Returns the eager outputs as a tuple of NumPy arrays.
    """
    inputs = [ops.convert_to_tensor(x) for x in inputs]
    layer(*inputs)  # builds the weights
    state = [to_numpy(w).copy() for w in layer.weights]  # stateful layers (spectral norm's u) are reset
    eager = layer(*inputs)
    eager = tuple(to_numpy(x) for x in (eager if isinstance(eager, (tuple, list)) else (eager,)))
    assert eager[0].shape == tuple(expected_shape)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    for w, value in zip(layer.weights, state):
        w.assign(value)
    grads = weight_gradients(layer, inputs)
    assert len(grads) == len(layer.trainable_weights)
    for weight, grad in zip(layer.trainable_weights, grads):
        assert grad is not None, weight.path
        assert grad.shape == tuple(weight.shape), weight.path
        assert np.abs(grad).max() > 0, weight.path
    return eager


@contextlib.contextmanager
def perturbed_weights(model, relative=1e-7, seed=0):
    """Multiplies every weight by (1 + relative * N(0, 1)) inside the block: float32 rounding scale,
    to measure how sensitive an output is to summation order."""
    saved = [to_numpy(w).copy() for w in model.weights]
    rng = np.random.default_rng(seed)
    try:
        for w, v in zip(model.weights, saved):
            w.assign(v * (1 + relative * rng.normal(size=v.shape)).astype(np.float32))
        yield
    finally:
        for w, v in zip(model.weights, saved):
            w.assign(v)


def assert_batched_equals_single(batched, single, whole_network=False):
    """What a batch promises, in every test: each image's uint8 result equals its single-image
    result, to float rounding.
    - The whole network (`whole_network`, `Inpainter(restrict=False)`) on TensorFlow: bit for bit
      (measured on CPU with this checkpoint and the release-sized one, 37x53 to 256x256, batches
      of 4: x_stage2 itself is identical).
    - JAX (XLA) and PyTorch pick convolution algorithms by batch shape, and the default restricted
      path crops a batch to the union of its images' reach (`inpaint.restricted`), which an image
      alone does not: x_stage2 differs by float rounding (up to ~1e-5), so now and then a hole
      value rounds the other way (measured: one value in 6000 to 50000, never more than 1 level).

    Args:
        batched, single: uint8 (H, W, 3).
    """
    batched, single = np.asarray(batched), np.asarray(single)
    if whole_network and keras.backend.backend() == 'tensorflow':
        np.testing.assert_array_equal(batched, single)
        return
    diff = np.abs(batched.astype(int) - single)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(3, 1e-3 * diff.size), diff.max()


def assert_discriminator_matches_golden(discriminator, path):
    """The golden README's discriminator check: one call on the fixture's `x` (training mode) gives
    `out`, and leaves each spectral-norm `u` at `u_after__...`, both within 1e-4 relative.

    Args:
        discriminator: freshly loaded (`u` changes on every call).
        path: the fixture's `discriminator.npz`.
    """
    data = np.load(path)
    out = to_numpy(discriminator(data['x']))
    assert np.abs(out - data['out']).max() < 1e-4 * np.abs(data['out']).max()
    for conv in discriminator.convs:
        want = data[f'u_after__discriminator__sn_patch_gan__{conv.name}__kernel_sn__u']
        assert np.abs(to_numpy(conv.u) - want).max() < 1e-4 * np.abs(want).max(), conv.name


def load_golden_models():
    """(generator, discriminator, report) of the golden checkpoint: the TF1 original where
    TensorFlow can read it, the converted weights folder elsewhere."""
    from inpaint.checkpoint import load_models
    return load_models(GOLDEN_CHECKPOINT if HAS_TENSORFLOW else GOLDEN_WEIGHTS)


@pytest.fixture(scope='session')
def golden_models():
    return load_golden_models()


@pytest.fixture(scope='session')
def guided_models():
    """(generator, discriminator, report) of the guided golden checkpoint (width 8), loaded as
    `load_golden_models` loads the other."""
    from inpaint.checkpoint import load_models
    return load_models(GUIDED_CHECKPOINT if HAS_TENSORFLOW else GUIDED_WEIGHTS)


@pytest.fixture(scope='session')
def served_model():
    """The golden checkpoint loaded and warmed up as `python -m inpaint.commands.serve` loads it."""
    from inpaint.server import load_model
    return load_model(GOLDEN_CHECKPOINT)


@contextlib.contextmanager
def live_server(app):
    """Serves an ASGI app with uvicorn on a free loopback port, in a thread; yields the base URL."""
    import threading
    import time

    from inpaint.server import bind, make_server

    sock = bind('127.0.0.1', 0)
    server = make_server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={'sockets': [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, 'the test server did not start'
        time.sleep(0.01)
    try:
        yield f'http://127.0.0.1:{sock.getsockname()[1]}'
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope='module')
def loaded_once():
    """`Inpainter.from_checkpoint` of the read-only golden fixtures, loaded once per test module
    (keyed by path, precision and options), so that command-line tests calling `main` many times
    compile the network once per shape instead of once per call. Tests of loading itself
    (tests/test_checkpoint.py) do not use it; other paths load as usual."""
    from inpaint.inference import Inpainter
    fixtures = {os.path.realpath(path) for path in (GOLDEN_CHECKPOINT, GOLDEN_WEIGHTS,
                                                    GUIDED_CHECKPOINT, GUIDED_WEIGHTS)}
    load, cache = Inpainter.from_checkpoint.__func__, {}

    def from_checkpoint(cls, path, precision='float32', **kwargs):
        if os.path.realpath(path) not in fixtures:
            return load(cls, path, precision, **kwargs)
        key = (os.path.realpath(path), precision, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = load(cls, path, precision, **kwargs)
        return cache[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Inpainter, 'from_checkpoint', classmethod(from_checkpoint))
        yield
