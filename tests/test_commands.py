"""inpaint/commands.py: every entry point starts without TensorFlow's start-up lines (unless
--verbose), command modules import TensorFlow lazily, console scripts resolve."""
import configparser
import concurrent.futures
import importlib
import os
import subprocess
import sys

import pytest

from conftest import GOLDEN_CHECKPOINT, golden_case
from inpaint import commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, cwd=ROOT):
    """Runs a Python command line from the repository root (so `inpaint` is this checkout's)."""
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_command_modules_do_not_import_tensorflow():
    """So that `commands.run` can silence TensorFlow before `main` imports it."""
    modules = ', '.join(commands.COMMAND_MODULES)
    code = (f'import sys, test, train, {modules}\n'
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported at module level'")
    result = run(['-c', code])
    assert result.returncode == 0, result.stderr


def test_console_scripts_resolve_to_the_commands():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, 'setup.cfg'))
    lines = parser['options.entry_points']['console_scripts'].strip().splitlines()
    scripts = dict(line.replace(' ', '').split('=') for line in lines)
    assert set(scripts) == {'deepfill-inpaint', 'deepfill-train', 'deepfill-evaluate',
                            'deepfill-serve', 'deepfill-export'}
    for target in scripts.values():
        module, name = target.split(':')
        assert callable(getattr(importlib.import_module(module), name)), target
    for module in commands.COMMAND_MODULES:
        assert callable(importlib.import_module(module).main), module


def test_every_command_module_runs_main_through_commands_run():
    """`python -m inpaint.X`, test.py and train.py start with `commands.run(main)`, which calls
    quiet_tensorflow before main (and, above, none imports TensorFlow before main)."""
    for path in ['test.py', 'train.py'] + [m.replace('.', '/') + '.py' for m in commands.COMMAND_MODULES]:
        with open(os.path.join(ROOT, path)) as handle:
            source = handle.read()
        main_block = source.split("if __name__ == '__main__':")[-1]
        assert 'commands.run(main)' in main_block, path


def test_quiet_tensorflow_sets_the_level_and_hooks_the_import(monkeypatch):
    from absl import logging as absl_logging
    monkeypatch.delenv('TF_CPP_MIN_LOG_LEVEL', raising=False)
    monkeypatch.setattr(sys, 'meta_path', list(sys.meta_path))
    monkeypatch.setitem(sys.modules, 'tensorflow', None)  # as if not imported yet
    monkeypatch.delitem(sys.modules, 'tensorflow')
    verbosity = absl_logging.get_verbosity()
    try:
        commands.quiet_tensorflow(['--verbose'])
        assert 'TF_CPP_MIN_LOG_LEVEL' not in os.environ and absl_logging.get_verbosity() == absl_logging.INFO
        assert not any(isinstance(f, commands._QuietImport) for f in sys.meta_path)
        commands.quiet_tensorflow(['--other'])
        assert os.environ['TF_CPP_MIN_LOG_LEVEL'] == '3'
        assert absl_logging.get_verbosity() == absl_logging.WARNING
        assert isinstance(sys.meta_path[0], commands._QuietImport)
    finally:
        absl_logging.set_verbosity(verbosity)


@pytest.fixture(scope='module')
def entry_point_runs(tmp_path_factory):
    """test.py on a golden image, and `python -m inpaint.checkpoint` on a missing source: each
    imports TensorFlow; run in parallel."""
    tmp_path = tmp_path_factory.mktemp('entry_points')
    case = golden_case('rocket256')
    points = {
        'test.py': ['test.py', '--image', case['input'], '--mask', case['mask'], '--output',
                    str(tmp_path / 'out.png'), '--checkpoint_dir', GOLDEN_CHECKPOINT],
        'checkpoint': ['-m', 'inpaint.checkpoint', str(tmp_path / 'missing'), str(tmp_path / 'c')],
    }
    with concurrent.futures.ThreadPoolExecutor(len(points)) as pool:
        return dict(zip(points, pool.map(run, points.values())))


@pytest.mark.slow
def test_test_py_prints_nothing_on_stderr(entry_point_runs):
    """TensorFlow's import-time lines (oneDNN, cudart_stub, cpu_feature_guard) and later C++
    lines (cuInit) are all gone: stderr is empty."""
    result = entry_point_runs['test.py']
    assert result.returncode == 0 and result.stderr == '', result.stderr


@pytest.mark.slow
def test_python_m_inpaint_checkpoint_prints_only_its_error(entry_point_runs):
    result = entry_point_runs['checkpoint']
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
