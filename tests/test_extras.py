"""inpaint/extras.py: the install without TensorFlow. The backend Keras will choose, read without
importing it; a backend that is not installed is one line and exit 2 from every command; the
TensorFlow-only features name the extra to install; and the JAX paths (inpaint, batch, evaluate,
train, serve) run in a process where TensorFlow cannot be imported."""
import json
import os
import subprocess
import sys

import pytest

from conftest import GOLDEN_CHECKPOINT, GOLDEN_WEIGHTS, REPO, golden_case, jax_child_env
from inpaint import extras

COMMANDS = [[os.path.join(REPO, 'test.py')], [os.path.join(REPO, 'train.py')],
            ['-m', 'inpaint.commands.evaluate'], ['-m', 'inpaint.commands.serve'],
            ['-m', 'inpaint.commands.export'], ['-m', 'inpaint.commands.convert']]
BLOCK = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None  # import fails as if absent\n"


def blocked_env(tmp_path, packages, **env):
    """An environment whose Python processes cannot import `packages` (a sitecustomize that sets
    them to None in sys.modules: `import` raises ModuleNotFoundError, find_spec returns None)."""
    folder = tmp_path / 'blocker'
    folder.mkdir(exist_ok=True)
    (folder / 'sitecustomize.py').write_text(BLOCK.format(names=list(packages)))
    return dict(os.environ, PYTHONPATH=f'{folder}{os.pathsep}{REPO}', **env)


@pytest.mark.parametrize('env, keras_json, expected', [
    ({'KERAS_BACKEND': 'jax'}, {'backend': 'torch'}, ('jax', 'KERAS_BACKEND')),
    ({'KERAS_BACKEND': ''}, {'backend': 'torch'}, ('torch', 'keras.json')),
    ({}, None, ('tensorflow', "Keras' default")),
    ({}, 'not json', ('tensorflow', "Keras' default")),
])
def test_keras_backend_is_read_as_keras_reads_it(tmp_path, monkeypatch, env, keras_json, expected):
    monkeypatch.delenv('KERAS_BACKEND', raising=False)
    monkeypatch.setenv('KERAS_HOME', str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if keras_json is not None:
        text = keras_json if isinstance(keras_json, str) else json.dumps(keras_json)
        (tmp_path / 'keras.json').write_text(text)
    name, source = extras.keras_backend()
    assert name == expected[0]
    assert source.endswith(expected[1]), source


def test_backend_missing_names_the_extra_and_an_installed_backend(monkeypatch):
    monkeypatch.setenv('KERAS_BACKEND', 'torch')
    monkeypatch.setitem(sys.modules, 'torch', None)
    message = extras.backend_missing()
    assert message.startswith('the Keras backend torch (KERAS_BACKEND) is not installed here')
    assert "pip install 'deepfill-tf2[torch]'" in message and '\n' not in message
    assert 'set KERAS_BACKEND=' in message  # this test process runs on an installed backend
    monkeypatch.setenv('KERAS_BACKEND', 'numpy')
    assert 'not one this project runs on' in extras.backend_missing()
    monkeypatch.setenv('KERAS_BACKEND', 'jax')
    assert extras.backend_missing() is None


def test_every_command_says_in_one_line_that_the_backend_is_missing(tmp_path):
    """KERAS_BACKEND=torch without torch (blocked here, should torch be installed): one line on
    stderr, exit 2, nothing on stdout, before Keras is imported. `--help` still works."""
    env = blocked_env(tmp_path, ['torch'], KERAS_BACKEND='torch')
    runs = [subprocess.Popen([sys.executable, *command, '--checkpoint_dir', 'x'], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for command in COMMANDS]
    for command, run in zip(COMMANDS, runs):
        stdout, stderr = run.communicate(timeout=120)
        assert (run.returncode, stdout, len(stderr.splitlines())) == (2, '', 1), (command, stderr)
        program, _, message = stderr.partition(': error: ')
        assert program in ('test.py', 'train.py') or program.startswith('python -m inpaint.commands.')
        assert message.startswith("the Keras backend torch (KERAS_BACKEND) is not installed "
                                  "here; pip install 'deepfill-tf2[torch]'"), (command, stderr)
    helped = subprocess.run([sys.executable, COMMANDS[0][0], '--help'], env=env, capture_output=True,
                            text=True, timeout=120)
    assert helped.returncode == 0 and 'usage' in helped.stdout, helped.stderr


# Every JAX path in one process (Keras, JAX and the model are loaded once), TensorFlow blocked.
# Prints {path: exit code or result} as JSON on its last line.
JAX_PATHS = r'''
import json, os, sys
import cv2
import numpy as np
from inpaint import server as serve
from inpaint.commands import convert, evaluate, export, run as run_command, train
from inpaint.commands import inpaint as infer

folder, weights, tf1, image, mask = sys.argv[1:6]
overrides = sys.argv[6:]
os.makedirs(os.path.join(folder, 'in'))
cv2.imwrite(os.path.join(folder, 'in', 'photo.png'), cv2.imread(image))
result = {}

def run(name, main, argv):
    try:
        result[name] = run_command(main, argv)
    except SystemExit as exit_:
        result[name] = exit_.code

run('inpaint', infer.main, ['--image', image, '--mask', mask, '--output',
                            os.path.join(folder, 'out.png'), '--checkpoint_dir', weights])
run('batch', infer.main, ['--input_dir', os.path.join(folder, 'in'), '--mask', mask, '--output_dir',
                          os.path.join(folder, 'batch'), '--checkpoint_dir', weights])
run('evaluate', evaluate.main, ['--image_dir', os.path.join(folder, 'in'), '--output_dir',
                                os.path.join(folder, 'eval'), '--methods', 'deepfill,telea',
                                '--checkpoint_dir', weights, '--resolution', '64', '--families',
                                'box', '--no-figures', '--no-progress'])
run('train', train.main, [arg for item in overrides for arg in ('--set', item)])
model = serve.load_model(weights)
from starlette.testclient import TestClient
client = TestClient(serve.create_app(model))
result['healthz'] = client.get('/healthz').json()
png = lambda path: open(path, 'rb').read()
response = client.post(serve.API_PATH, files={'image': ('i.png', png(image), 'image/png'),
                                              'mask': ('m.png', png(mask), 'image/png')})
result['api'] = [response.status_code, response.headers['content-type']]
# What needs TensorFlow says so in one line (exit 2).
run('tf1_checkpoint', infer.main, ['--image', image, '--mask', mask, '--output',
                                   os.path.join(folder, 'tf1.png'), '--checkpoint_dir', tf1])
run('format_tf1', convert.main, [weights, os.path.join(folder, 'tf1_export'), '--format', 'tf1'])
run('export', export.main, ['--checkpoint_dir', weights, '--format', 'onnx', '--height', '64',
                            '--width', '64', os.path.join(folder, 'model.onnx')])
result['outputs'] = sorted(os.listdir(folder))
result['tensorflow'] = repr(sys.modules.get('tensorflow', 'never asked for'))
print(json.dumps(result))
'''


@pytest.fixture(scope='module')
def jax_without_tensorflow(tmp_path_factory):
    """The JAX paths run once, TensorFlow blocked: (result, stdout, stderr)."""
    from test_training import tiny_overrides
    folder = tmp_path_factory.mktemp('no_tensorflow')
    case = golden_case('rocket256')
    image, mask = str(folder / 'image.png'), str(folder / 'mask.png')
    import cv2
    import numpy as np
    cv2.imwrite(image, cv2.imread(case['input'])[100:164, 80:144])  # 64x64, a hole in the middle
    hole = np.zeros((64, 64), np.uint8)
    hole[20:40, 24:44] = 255
    cv2.imwrite(mask, hole)
    overrides = tiny_overrides(folder / 'train', max_iters=2, val=False, heldout_steps=0)
    # Every command compiles the same 64x64 network: the cache compiles it once.
    env = blocked_env(folder, ['tensorflow'], KERAS_BACKEND='jax',
                      **jax_child_env(tmp_path_factory.mktemp('jax_cache')))
    run = subprocess.run([sys.executable, '-c', JAX_PATHS, str(folder / 'work'), GOLDEN_WEIGHTS,
                          GOLDEN_CHECKPOINT, image, mask, *overrides], cwd=folder, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1]), run.stdout, run.stderr


@pytest.mark.slow
@pytest.mark.jax_session
def test_jax_paths_run_without_tensorflow(jax_without_tensorflow):
    result, stdout, _ = jax_without_tensorflow
    assert result['tensorflow'] == 'None'  # blocked all along: nothing imported it
    assert [result[name] for name in ('inpaint', 'batch', 'evaluate', 'train')] == [0, 0, 0, 0], result
    assert result['healthz']['backend'] == 'jax' and result['healthz']['widths'] == {'generator': 8}
    assert result['api'] == [200, 'image/png']
    assert {'out.png', 'batch', 'eval'} <= set(result['outputs']), result['outputs']
    assert 'Inpainted' in stdout and '1 written, 0 skipped existing, 0 failed' in stdout


@pytest.mark.slow
@pytest.mark.jax_session
def test_tensorflow_only_features_say_what_to_install(jax_without_tensorflow):
    result, _, stderr = jax_without_tensorflow
    assert [result[name] for name in ('tf1_checkpoint', 'format_tf1', 'export')] == [2, 2, 2], result
    assert not {'tf1.png', 'tf1_export', 'model.onnx'} & set(result['outputs']), result['outputs']
    lines = [line for line in stderr.splitlines() if 'needs TensorFlow' in line]
    assert len(lines) == 3, stderr[-3000:]
    assert lines[0].startswith(f'test.py: error: {GOLDEN_CHECKPOINT}/snap-0: reading a TF1 checkpoint')
    assert "pip install 'deepfill-tf2[tensorflow]'" in lines[0]
    assert 'python -m inpaint.commands.convert' in lines[0]
    assert '--format tf1' in lines[1] and "pip install 'deepfill-tf2[tensorflow]'" in lines[1]
    assert lines[2] == ("python -m inpaint.commands.export: error: exporting (onnx) needs "
                        "TensorFlow, which is not installed here; pip install 'deepfill-tf2[export]'")
    assert 'Traceback' not in stderr
