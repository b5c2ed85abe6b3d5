"""The optional parts of the install (setup.cfg's extras) and the one line saying what to install.

The base install (Keras, NumPy, OpenCV, ...) has no Keras backend: each is an extra,
`pip install 'deepfill-tf2[tensorflow]'` (the default backend, what `make` installs), `[jax]` or
`[torch]`. Inference, batches, evaluation, training and the server run on any of them. Only
TensorFlow reads and writes TensorFlow checkpoints (the authors' TF1 release, `--format tf1`) and
exports (SavedModel, TFLite, and ONNX through tf2onnx).

Nothing here imports Keras or a backend, so a command can check before `import keras` fails with a
traceback (`import keras` imports its backend).
"""
import importlib.machinery
import json
import os
import sys

PROJECT = 'deepfill-tf2'
BACKENDS = ('tensorflow', 'jax', 'torch')  # Keras backend = its package = our extra


def installed(package):
    """Whether the top-level `package` can be imported (without importing it).

    Looks on sys.path only (`PathFinder`), not through the import hooks of `sys.meta_path`: the
    one-shot hook of `commands.quiet_tensorflow` must stay for the real `import tensorflow`.
    """
    if package in sys.modules:
        return sys.modules[package] is not None  # None: blocked, imports fail
    return importlib.machinery.PathFinder.find_spec(package) is not None


def install_command(extra):
    """`pip install 'deepfill-tf2[extra]'`."""
    return f"pip install '{PROJECT}[{extra}]'"


def packages_missing(feature, packages, extra):
    """The one-line message for a `feature` that needs `packages` where some are not installed
    (naming them and the extra that brings them); None where all are.
    E.g. `packages_missing('exporting (onnx)', ['tf2onnx', 'onnxruntime'], 'export')`."""
    missing = [package for package in packages if not installed(package)]
    if not missing:
        return None
    names = ', '.join('TensorFlow' if name == 'tensorflow' else name for name in missing)
    verb = 'is' if len(missing) == 1 else 'are'
    return f'{feature} needs {names}, which {verb} not installed here; {install_command(extra)}'


def tensorflow_missing(feature, extra='tensorflow'):
    """`packages_missing` for a TensorFlow-only `feature`.
    E.g. `tensorflow_missing('reading TF1 checkpoints')`."""
    return packages_missing(feature, ['tensorflow'], extra)


def keras_backend():
    """(backend, where it was chosen) as `import keras` will choose it, read without importing Keras:
    `KERAS_BACKEND`, else the "backend" of keras.json in `KERAS_HOME` (default ~/.keras, or
    /tmp/.keras where the home folder is not writable), else 'tensorflow'."""
    name = os.environ.get('KERAS_BACKEND')
    if name:
        return name, 'KERAS_BACKEND'
    if 'KERAS_HOME' in os.environ:
        folder = os.environ['KERAS_HOME']
    else:
        home = os.path.expanduser('~')
        folder = os.path.join(home if os.access(home, os.W_OK) else '/tmp', '.keras')
    path = os.path.join(folder, 'keras.json')
    try:
        with open(path, encoding='utf-8') as handle:
            name = json.load(handle).get('backend')
    except (OSError, ValueError, AttributeError):  # no file, or not a JSON object: Keras' default
        name = None
    if name:
        return name, path
    return 'tensorflow', "Keras' default"


def backend_missing():
    """The one-line message when the Keras backend `keras_backend()` names cannot be imported
    (or is none of tensorflow, jax, torch); None when it can."""
    name, source = keras_backend()
    if name not in BACKENDS:
        return (f'the Keras backend {name!r} ({source}) is not one this project runs on; set '
                f'KERAS_BACKEND to one of {", ".join(BACKENDS)}')
    if installed(name):
        return None
    others = [other for other in BACKENDS if other != name and installed(other)]
    instead = f', or set KERAS_BACKEND={others[0]} (installed here)' if others else ''
    return (f'the Keras backend {name} ({source}) is not installed here; '
            f'{install_command(name)}{instead}')
