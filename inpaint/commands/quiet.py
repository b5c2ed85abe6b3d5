"""TensorFlow's start-up lines, silenced before TensorFlow is imported (unless `--verbose`).

TensorFlow's C++ libraries log while they load (oneDNN, `cudart_stub`, `cpu_feature_guard`,
`cuInit` lines). Since TensorFlow 2.19 the lines written during `import tensorflow` ignore
`TF_CPP_MIN_LOG_LEVEL` (tensorflow/tensorflow#100442): they come from static initializers that run
before the level is read. So `quiet_tensorflow` does two things before TensorFlow is imported:
it sets `TF_CPP_MIN_LOG_LEVEL=3` for everything logged afterwards (`cuInit` is an ERROR line), and
it points file descriptor 2 at /dev/null for the duration of `import tensorflow` only. Exceptions
still surface: an import that fails raises after stderr is restored.

Every entry point calls it first, through `inpaint.commands.run`; so command modules import
TensorFlow (and Keras, which imports it) inside `main`, never at module level.
"""
import importlib.util
import logging
import os
import sys

from inpaint.stderr import stderr_to_devnull


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
