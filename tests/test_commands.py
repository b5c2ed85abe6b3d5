"""The command lines (inpaint/commands/): no TensorFlow start-up line reaches stderr from any
command, each entry point's --help names the program as it was typed and ends its sentences, and
the console scripts resolve."""
import concurrent.futures
import configparser
import importlib
import os
import subprocess
import sys
import types

import pytest

from conftest import GOLDEN, GOLDEN_CHECKPOINT, golden_case
from inpaint import commands
from inpaint.commands import quiet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONSOLE_SCRIPTS = {'deepfill-inpaint': 'inpaint', 'deepfill-train': 'train',
                   'deepfill-evaluate': 'evaluate', 'deepfill-serve': 'serve',
                   'deepfill-export': 'export', 'deepfill-convert': 'convert'}
# Put on PYTHONPATH for a child process: writes whether TensorFlow was imported when it exits.
SITECUSTOMIZE = '''import atexit, os, sys
def _report(path=os.environ['DEEPFILL_IMPORT_REPORT']):
    with open(path, 'w') as handle:
        handle.write(str('tensorflow' in sys.modules))
atexit.register(_report)
'''


def run(args, env=None):
    """Runs a Python command line from the repository root (so `inpaint` is this checkout's),
    with TensorFlow's own log level unset."""
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_command_modules_do_not_import_tensorflow():
    """So that `commands.run` can silence TensorFlow before `main` imports it."""
    modules = ', '.join(f'inpaint.commands.{verb}' for verb in commands.VERBS)
    code = (f'import sys, test, train, {modules}\n'
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported at module level'")
    result = run(['-c', code])
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope='module')
def command_runs(tmp_path_factory):
    """Every command, each on an input that makes it import TensorFlow: test.py inpaints a golden
    image; the others stop on a missing checkpoint (or source) after loading Keras. Run in
    parallel, on TensorFlow; {verb: (CompletedProcess, whether TensorFlow was imported)}."""
    pytest.importorskip('tensorflow')
    tmp = tmp_path_factory.mktemp('commands')
    (tmp / 'site').mkdir()
    (tmp / 'site' / 'sitecustomize.py').write_text(SITECUSTOMIZE)
    case, missing = golden_case('rocket256'), str(tmp / 'missing')
    argvs = {
        'inpaint': ['test.py', '--image', case['input'], '--mask', case['mask'], '--output',
                    str(tmp / 'out.png'), '--checkpoint_dir', GOLDEN_CHECKPOINT],
        'train': ['train.py', '--set', f'model_restore={missing}', '--set', f'log_dir={tmp / "run"}',
                  '--set', 'cnum_generator=8', '--set', 'cnum_discriminator=8', '--set', 'val=False',
                  '--set', 'heldout_steps=0'],
        'evaluate': ['-m', 'inpaint.commands.evaluate', '--image_dir', os.path.join(GOLDEN, 'rocket256'),
                     '--output_dir', str(tmp / 'eval'), '--methods', 'deepfill', '--checkpoint_dir',
                     missing, '--no-progress'],
        'serve': ['-m', 'inpaint.commands.serve', '--checkpoint_dir', missing, '--port', '0'],
        'export': ['-m', 'inpaint.commands.export', '--checkpoint_dir', missing, '--format',
                   'saved_model', str(tmp / 'exported')],
        'convert': ['-m', 'inpaint.commands.convert', missing, str(tmp / 'converted')],
    }
    path = os.pathsep.join([str(tmp / 'site')] + [p for p in [os.environ.get('PYTHONPATH')] if p])

    def run_one(verb):
        report = tmp / f'{verb}.imports'
        result = run(argvs[verb], {'PYTHONPATH': path, 'DEEPFILL_IMPORT_REPORT': str(report),
                                   'KERAS_BACKEND': 'tensorflow'})
        return result, report.read_text() == 'True'

    with concurrent.futures.ThreadPoolExecutor(len(argvs)) as pool:
        return dict(zip(argvs, pool.map(run_one, argvs)))


@pytest.mark.slow
@pytest.mark.jax_session  # the commands run as TensorFlow child processes
@pytest.mark.parametrize('verb', commands.VERBS)
def test_no_tensorflow_start_up_line_on_stderr(command_runs, verb):
    """TensorFlow's import-time lines (oneDNN, cudart_stub, cpu_feature_guard) and later C++ lines
    (cuInit) are all gone: test.py's stderr is empty, the others' holds their one error line."""
    result, imported_tensorflow = command_runs[verb]
    assert imported_tensorflow, 'the command stopped before importing TensorFlow: nothing checked'
    if verb == 'inpaint':
        assert result.returncode == 0 and result.stderr == '', result.stderr
    else:
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert ': error: ' in lines[0] and 'missing' in lines[0], lines


def _description(help_text):
    """The paragraph after the usage block of an argparse help text."""
    return help_text.split('\n\n')[1]


@pytest.fixture
def absl_verbosity():
    """Restores absl's verbosity, which `quiet_tensorflow` sets."""
    from absl import logging as absl_logging
    verbosity = absl_logging.get_verbosity()
    yield
    absl_logging.set_verbosity(verbosity)


@pytest.mark.parametrize('script', sorted(CONSOLE_SCRIPTS))
def test_console_script_help_names_it_and_ends_its_sentence(monkeypatch, capsys, absl_verbosity,
                                                             script):
    monkeypatch.setattr(sys, 'argv', [f'/opt/venv/bin/{script}', '--help'])
    monkeypatch.setitem(sys.modules, '__main__', types.ModuleType('__main__'))  # as pip's script
    monkeypatch.setattr(sys, 'meta_path', list(sys.meta_path))
    monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '0')  # restored after quiet_tensorflow sets it
    with pytest.raises(SystemExit) as stop:
        getattr(commands, f'{CONSOLE_SCRIPTS[script]}_command')()
    out = capsys.readouterr().out
    assert stop.value.code == 0 and out.startswith(f'usage: {script} '), out[:200]
    assert _description(out).rstrip().endswith('.'), _description(out)


def test_script_and_module_help_name_them_as_typed():
    """`python test.py` and `python -m inpaint.commands.convert` (no console script) say so."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        script, module = pool.map(run, [['test.py', '--help'],
                                        ['-m', 'inpaint.commands.convert', '--help']])
    assert script.returncode == 0 and script.stdout.startswith('usage: test.py '), script.stderr
    assert module.returncode == 0, module.stderr
    assert module.stdout.startswith('usage: python -m inpaint.commands.convert '), module.stdout
    for result in (script, module):
        assert _description(result.stdout).rstrip().endswith('.'), result.stdout


def test_a_bad_flag_is_one_line_with_the_program_name(capsys):
    from inpaint.commands import export, serve
    for command in (export, serve):
        assert command.main(['--bogus'], prog='deepfill-x') == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith('deepfill-x: error: '), err


def test_console_scripts_resolve_to_the_commands():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, 'setup.cfg'))
    lines = parser['options.entry_points']['console_scripts'].strip().splitlines()
    scripts = dict(line.replace(' ', '').split('=') for line in lines)
    assert scripts == {name: f'inpaint.commands:{verb}_command'
                       for name, verb in CONSOLE_SCRIPTS.items()}
    for verb in commands.VERBS:
        assert callable(importlib.import_module(f'inpaint.commands.{verb}').main), verb


def test_quiet_tensorflow_sets_the_level_and_hooks_the_import(monkeypatch, absl_verbosity):
    from absl import logging as absl_logging
    monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '0')  # recorded, so restored afterwards
    monkeypatch.delenv('TF_CPP_MIN_LOG_LEVEL')
    monkeypatch.setattr(sys, 'meta_path', list(sys.meta_path))
    monkeypatch.setitem(sys.modules, 'tensorflow', None)  # as if not imported yet
    monkeypatch.delitem(sys.modules, 'tensorflow')
    commands.quiet_tensorflow(['--verbose'])
    assert 'TF_CPP_MIN_LOG_LEVEL' not in os.environ and absl_logging.get_verbosity() == absl_logging.INFO
    assert not any(isinstance(f, quiet._QuietImport) for f in sys.meta_path)
    commands.quiet_tensorflow(['--other'])
    assert os.environ['TF_CPP_MIN_LOG_LEVEL'] == '3'
    assert absl_logging.get_verbosity() == absl_logging.WARNING
    assert isinstance(sys.meta_path[0], quiet._QuietImport)
