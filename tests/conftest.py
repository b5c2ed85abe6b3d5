"""Shared test helpers: the golden fixtures and a generic Keras layer check."""
import contextlib
import os

import numpy as np
import pytest
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, 'data', 'golden_small')  # copy of ../shared/golden/small
SHARED_GOLDEN = os.path.join(HERE, '..', '..', 'shared', 'golden', 'small')
CASES = ('rocket256', 'motorcycle184x264', 'coffee400x600')
GOLDEN_CHECKPOINT = os.path.join(GOLDEN, 'checkpoint_dir')

# The golden README's tolerances for x_stage1 / x_stage2.
STAGE_MAX, STAGE_MEAN = 1e-3, 1e-5


def golden_case(name):
    """Paths and intermediates of one golden case."""
    folder = os.path.join(GOLDEN, name)
    return {
        'input': os.path.join(folder, 'input.png'),
        'mask': os.path.join(folder, 'mask.png'),
        'output': os.path.join(folder, 'output.png'),
        **dict(np.load(os.path.join(folder, 'intermediates.npz'))),
    }


def check_layer(layer, inputs, expected_shape):
    """Config round trip, eager == tf.function, output shape, a gradient for every weight."""
    inputs = [tf.constant(x) for x in inputs]
    layer(*inputs)  # builds the weights
    state = [w.numpy() for w in layer.weights]  # stateful layers (spectral norm's u) are reset
    restore = lambda: [w.assign(v) for w, v in zip(layer.weights, state)]
    eager = layer(*inputs)
    eager = eager if isinstance(eager, (tuple, list)) else (eager,)
    assert tuple(eager[0].shape) == tuple(expected_shape)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restore()
    traced = tf.function(lambda *xs: layer(*xs))(*inputs)
    traced = traced if isinstance(traced, (tuple, list)) else (traced,)
    for a, b in zip(eager, traced):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as tape:
        out = layer(*inputs)
        out = out[0] if isinstance(out, (tuple, list)) else out
        loss = tf.reduce_sum(out * tf.random.stateless_normal(out.shape, [1, 2]))
    grads = tape.gradient(loss, layer.trainable_weights)
    for weight, grad in zip(layer.trainable_weights, grads):
        assert grad is not None, weight.path
        assert float(tf.reduce_max(tf.abs(grad))) > 0, weight.path
    return eager


@contextlib.contextmanager
def perturbed_weights(model, relative=1e-7, seed=0):
    """Multiplies every weight by (1 + relative * N(0, 1)) inside the block: float32 rounding scale,
    to measure how sensitive an output is to summation order."""
    saved = [w.numpy() for w in model.weights]
    rng = np.random.default_rng(seed)
    try:
        for w, v in zip(model.weights, saved):
            w.assign(v * (1 + relative * rng.normal(size=v.shape)).astype(np.float32))
        yield
    finally:
        for w, v in zip(model.weights, saved):
            w.assign(v)


@pytest.fixture(scope='session')
def golden_models():
    from inpaint.checkpoint import load_models
    return load_models(GOLDEN_CHECKPOINT)


@pytest.fixture(scope='session')
def served_model():
    """The golden checkpoint loaded and warmed up as `python -m inpaint.serve` loads it."""
    from inpaint.serve import load_model
    return load_model(GOLDEN_CHECKPOINT)


@contextlib.contextmanager
def live_server(app):
    """Serves an ASGI app with uvicorn on a free loopback port, in a thread; yields the base URL."""
    import threading
    import time

    from inpaint.serve import bind, make_server

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
