"""What every command line shares: TensorFlow's start-up lines silenced, and the console scripts.

TensorFlow's C++ libraries log while they load (oneDNN, `cudart_stub`, `cpu_feature_guard`,
`cuInit` lines). Since TensorFlow 2.19 the lines written during `import tensorflow` ignore
`TF_CPP_MIN_LOG_LEVEL` (tensorflow/tensorflow#100442): they come from static initializers that run
before the level is read. So `quiet_tensorflow` does two things before TensorFlow is imported:
it sets `TF_CPP_MIN_LOG_LEVEL=3` for everything logged afterwards (`cuInit` is an ERROR line), and
it points file descriptor 2 at /dev/null for the duration of `import tensorflow` only. Exceptions
still surface: an import that fails raises after stderr is restored.

Every entry point calls it first, unless `--verbose` is given: `test.py`, `train.py`,
`python -m inpaint.{evaluate,serve,export}` and the `deepfill-*` console scripts (through `run`).
Command modules import TensorFlow inside `main`, never at module level, so that the call comes
first (`tests/test_commands.py` checks it).
"""
import contextlib
import importlib
import importlib.util
import logging
import os
import sys

VERBOSE_HELP = "show TensorFlow's start-up and C++ log lines and INFO logs (hidden by default)"


def quiet_tensorflow(argv):
    """Silences TensorFlow's start-up and C++ log lines unless `argv` holds `--verbose`.

    Call it before anything imports TensorFlow. An explicit `TF_CPP_MIN_LOG_LEVEL` in the
    environment is kept. Python logging: absl at WARNING (INFO with `--verbose`), the
    `tensorflow` logger at ERROR (retracing notices and the like).

    Args:
        argv: the command's arguments (without the program name).
    """
    from absl import logging as absl_logging  # absl-py does not import TensorFlow

    verbose = '--verbose' in argv
    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)
    if verbose:
        return
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
    if 'tensorflow' not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport:
    """A one-shot import hook: `tensorflow`'s own module body runs with stderr on /dev/null."""

    def find_spec(self, name, path=None, target=None):
        if name != 'tensorflow':
            return None
        sys.meta_path.remove(self)  # one use; the regular finders locate the package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def quiet_exec_module(module):
                with stderr_to_devnull():
                    exec_module(module)

            spec.loader.exec_module = quiet_exec_module  # this package's loader instance only
        return spec


@contextlib.contextmanager
def stderr_to_devnull():
    """Points file descriptor 2 (C++ and Python stderr alike) at /dev/null inside the block."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hide
        yield
        return
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def run(main, argv=None):
    """Runs a command's `main(argv)` with TensorFlow quiet (unless `--verbose`); its exit code.

    A Keras backend that is not installed (`KERAS_BACKEND=torch` without torch, or TensorFlow,
    the default, in a JAX-only install) is one line on stderr and exit code 2 (`--help` still
    works).

    Args:
        main: the command's `main(argv) -> int`.
        argv: arguments without the program name (default `sys.argv[1:]`).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_tensorflow(argv)
    if not {'-h', '--help'} & set(argv):
        require_backend()
    return main(argv)


def require_backend():
    """Exits with code 2 and one line on stderr when the Keras backend cannot be imported
    (`extras.backend_missing`), before `import keras` would raise it as a traceback."""
    from inpaint import extras
    problem = extras.backend_missing()
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        raise SystemExit(2)


def _console_script(module):
    """The entry point of a console script: imports `module` (cheap: no TensorFlow) and runs it."""
    def entry_point():
        return run(importlib.import_module(module).main)
    entry_point.__name__ = entry_point.__qualname__ = module.rsplit('.', 1)[1]
    entry_point.__doc__ = f'Console script for `{module}` (see its docstring).'
    return entry_point


# setup.cfg [options.entry_points] console_scripts point here.
inpaint_command = _console_script('inpaint.infer')      # deepfill-inpaint: test.py's flags
train_command = _console_script('inpaint.train')        # deepfill-train: train.py's flags
evaluate_command = _console_script('inpaint.evaluate')  # deepfill-evaluate
serve_command = _console_script('inpaint.serve')        # deepfill-serve
export_command = _console_script('inpaint.export')      # deepfill-export

COMMAND_MODULES = ('inpaint.infer', 'inpaint.train', 'inpaint.evaluate', 'inpaint.serve',
                   'inpaint.export')
