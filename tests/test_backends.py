"""The same weights on every Keras backend: the demo command and golden parity, each backend in
its own process (a backend is chosen when Keras is imported)."""
import importlib.util
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import GOLDEN_WEIGHTS, REPO, STAGE_MAX, STAGE_MEAN, shared_path

# Golden parity of the generator (two well-conditioned cases), contextual attention and the
# discriminator, printed as JSON by a child process on the backend under test; its first argument
# is ../shared/golden/small (the intermediates are there only).
PARITY = r'''
import json, os, sys
import numpy as np
from keras import ops
from inpaint.checkpoint import load_models
from inpaint.flow import offset_flow
from inpaint.imageio import read_image, read_mask
from inpaint.inference import Inpainter, to_network
from inpaint.layers import ContextualAttention
golden, weights = sys.argv[1], sys.argv[2]
generator, discriminator, _ = load_models(weights)
inpainter, result = Inpainter(generator), {}
for name in ('rocket256', 'motorcycle184x264'):
    folder = os.path.join(golden, name)
    want = np.load(os.path.join(folder, 'intermediates.npz'))
    mask = read_mask(os.path.join(folder, 'mask.png'))[None, :, :, None].astype(np.float32)
    image = to_network(read_image(os.path.join(folder, 'input.png'))[None]) * (1 - mask)
    x1, x2, flow = inpainter.predict(image, mask)
    for key, got in (('x_stage1', x1), ('x_stage2', x2)):
        diff = np.abs(got - want[key])
        result[f'{name}/{key}'] = [float(diff.max()), float(diff.mean())]
    result[f'{name}/flow'] = float(np.all(np.abs(flow - want['offset_flow']) < 1e-6, axis=-1).mean())
attention = np.load(os.path.join(golden, 'contextual_attention.npz'))
y, offsets = ContextualAttention(3, 1, rate=2)(attention['f'], attention['f'], attention['mask'])
result['attention/y'] = float(np.abs(ops.convert_to_numpy(y) - attention['y']).max() / np.abs(attention['y']).max())
result['attention/flow'] = float(np.all(np.abs(offset_flow(ops.convert_to_numpy(offsets)) - attention['flow']) < 1e-6, axis=-1).mean())
d = np.load(os.path.join(golden, 'discriminator.npz'))
result['discriminator'] = float(np.abs(ops.convert_to_numpy(discriminator(d['x'])) - d['out']).max() / np.abs(d['out']).max())
print(json.dumps(result))
'''


def _has(module):
    return importlib.util.find_spec(module) is not None


def _run(backend, args, **kwargs):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL='3')
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, cwd=REPO, env=env,
                          **kwargs)


def _backend_or_skip(backend):
    if not _has(backend):
        pytest.skip(f'{backend} is not installed here (pip install {backend} to test that backend)')


@pytest.mark.slow
@pytest.mark.parametrize('backend', ['torch'])
def test_golden_parity_in_a_fresh_process(backend):
    """The golden README's tolerances, loading the neutral weights folder as a user without
    TensorFlow would. TensorFlow and JAX each run the whole golden suite (`make test` runs
    tests/test_generator.py and tests/test_layers.py on both), so only torch is checked here."""
    _backend_or_skip(backend)
    run = _run(backend, ['-c', PARITY, shared_path('golden', 'small'), GOLDEN_WEIGHTS], timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for name in ('rocket256', 'motorcycle184x264'):
        for key in ('x_stage1', 'x_stage2'):
            worst, mean = result[f'{name}/{key}']
            assert worst < STAGE_MAX and mean < STAGE_MEAN, (backend, name, key, worst, mean)
        assert result[f'{name}/flow'] >= 0.99, (backend, name)
    assert result['attention/y'] < 1e-4 and result['attention/flow'] >= 0.99, (backend, result)
    assert result['discriminator'] < 1e-4, (backend, result)


@pytest.mark.slow
@pytest.mark.parametrize('backend', [pytest.param('jax', marks=pytest.mark.jax_session), 'torch'])
def test_demo_command_equals_tensorflow_within_one_grey_level(tmp_path, backend):
    """`KERAS_BACKEND=<backend> test.py ... --checkpoint_dir checkpoints/default`, as the README's demo."""
    _backend_or_skip(backend)
    outputs = {}
    for name in ('tensorflow', backend):
        out = tmp_path / f'{name}.png'
        run = _run(name, ['test.py', '--image', 'examples/input.png', '--mask', 'examples/mask.png',
                          '--output', str(out), '--checkpoint_dir', 'checkpoints/default'], timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        outputs[name] = cv2.imread(str(out)).astype(int)
    diff = np.abs(outputs['tensorflow'] - outputs[backend])
    mask = cv2.imread(os.path.join(REPO, 'examples', 'mask.png'), cv2.IMREAD_GRAYSCALE) > 127
    assert diff.max() <= 1, diff.max()
    assert diff[~mask].max() == 0  # known pixels are the input's on every backend
    assert np.any(outputs['tensorflow'][mask] != cv2.imread(os.path.join(REPO, 'examples', 'input.png'))[mask])


@pytest.mark.slow
def test_training_golden_on_torch():
    """The original's training graph reproduced on PyTorch too (issue: training proven faithful)."""
    _backend_or_skip('torch')
    run = _run('torch', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                         os.path.join('tests', 'test_training_golden.py')], timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    assert ' passed' in run.stdout and 'skipped' not in run.stdout, run.stdout[-500:]
