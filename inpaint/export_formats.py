"""The generator exported for serving: TensorFlow SavedModel, ONNX, TFLite, each checked by running it.

The command is `python -m inpaint.commands.export` (`deepfill-export`). Every format holds the
same end-to-end function, `inpaint.serving.ServingModel`: uint8 RGB image and mask (any channels,
by the one mask rule) in, and for an edge-guided generator a third input, the uint8 edge image
(any channels, by the one edge rule); the inpainted uint8 RGB image and the network's x_stage2
out. The
SavedModel's `inpainted` is within 1 of `Inpainter(generator, restrict=False).inpaint`, on a few
values at most (float rounding; `tests/test_export.py`), ONNX and TFLite within their runtimes'
rounding. (The library's default, hole-restricted path equals the whole network up to rounding,
see `inpaint.restricted`.) Without a size, any size and batch; with `height` and `width`, a fixed
(1, H, W) (TFLite needs it); any mask channels in both. The SavedModel's `serving_default`
signature (also `serve`) is ready for TensorFlow Serving. After writing, the artifact is run on a
test image next to the Keras model and the largest difference is returned; an artifact that
cannot load or run is an error.

What each format needs from the model code is in the README's "Deploy" section: ONNX and TFLite
cannot express the contextual attention's `tf.while_loop` over a TensorArray, nor TFLite its
`tf.image.extract_patches` and 8-D slices.

The output path (`check_target`): nothing but an earlier export of the same format is ever
replaced, and only with `overwrite` (`--overwrite`). The extension fits the format (`.onnx`,
`.tflite`; a SavedModel is a folder); a folder holding anything but a SavedModel, a file that is
not an ONNX or TFLite model, the checkpoint being exported, the working folder and its parents are
refused. The artifact is written beside the target under a temporary name and renamed once it has
run; missing parent folders are created.
"""
import contextlib
import logging
import os
import re
import tempfile
import warnings

import numpy as np
from absl import logging as absl_logging

from inpaint import files
from inpaint.stderr import stderr_to_devnull

FORMATS = ('saved_model', 'onnx', 'tflite')


class ExportError(RuntimeError):
    """An export that cannot be done; the message is one line naming the cause."""


def serving_model(generator):
    """The generator inside the end-to-end uint8 -> uint8 `serving.ServingModel`, called once (so
    that Keras' exporters see a built model)."""
    from inpaint.serving import ServingModel
    model = ServingModel(generator)
    model(*check_inputs(16, 16, generator.guided))
    return model


def input_signature(height=None, width=None, guided=False):
    """`tf.TensorSpec`s of the serving function's `image` (B, H, W, 3), `mask` (B, H, W, C) and,
    for a guided generator, `edge` (B, H, W, C): B, H, W any or, with a size, (1, height, width);
    C any (1 to 4)."""
    import tensorflow as tf
    batch = None if height is None else 1
    names = ('mask', 'edge') if guided else ('mask',)
    return [tf.TensorSpec([batch, height, width, 3], tf.uint8, name='image')] + [
        tf.TensorSpec([batch, height, width, None], tf.uint8, name=name) for name in names]


def export_saved_model(generator, path, height=None, width=None):
    """Writes a SavedModel whose `serving_default` (and `serve`) signature is the serving function.

    Load with `tf.saved_model.load(path).signatures['serving_default'](image=..., mask=...)`
    (and `edge=...` for a guided generator).
    """
    from keras.export import ExportArchive

    model = serving_model(generator)
    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint('serve', model.call,
                         input_signature=input_signature(height, width, generator.guided))
    archive.write_out(path, verbose=False)
    return model


def export_onnx(generator, path, height=None, width=None, opset=17):
    """Writes the serving function as ONNX with Keras' exporter (tf2onnx on TensorFlow).

    tf2onnx logs the nodes it cannot convert and still writes a file: those are returned as
    `['OpName (in layer)', ...]`, for the error raised when ONNX Runtime cannot run the file.
    """
    model = serving_model(generator)
    with _collect_logs('tf2onnx') as messages, _quiet_stdout(), warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)  # Keras' numpy-2 patch of tf2onnx
        model.export(path, format='onnx',
                     input_signature=input_signature(height, width, generator.guided),
                     opset_version=opset, verbose=False)
    return model, _onnx_blockers(messages)


def export_tflite(generator, path, height, width):
    """Writes a TFLite flatbuffer of the serving function at a fixed size, TFLite built-in ops only.

    Select TF ops (the Flex delegate) are not allowed: a model that needs them does not run on a
    stock TFLite/LiteRT interpreter, which is the point of the format.
    """
    import tensorflow as tf

    check_request('tflite', height, width)
    model = serving_model(generator)
    with tempfile.TemporaryDirectory() as folder:
        from keras.export import ExportArchive
        archive = ExportArchive()
        archive.track(model)
        archive.add_endpoint('serve', model.call,
                             input_signature=input_signature(height, width, generator.guided))
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            with stderr_to_devnull():  # MLIR diagnostics; the error holds them
                flatbuffer = converter.convert()
        except Exception as error:  # ConverterError; its text lists the ops TFLite lacks
            absl_logging.info('TFLite converter: %s', error)
            raise ExportError(f'TFLite cannot express the model with built-in ops: '
                              f'{_tflite_blockers(str(error))}') from error
    with open(path, 'wb') as handle:
        handle.write(flatbuffer)
    return model


def _named(image, mask, edge):
    """The serving function's inputs by name (`edge` for a guided export only)."""
    return {'image': image, 'mask': mask, **({} if edge is None else {'edge': edge})}


def run_saved_model(path, image, mask, edge=None):
    """Runs an exported SavedModel's `serving_default` (`edge`: a guided export's); returns
    (inpainted, x_stage2) as NumPy."""
    import tensorflow as tf
    inputs = {name: tf.constant(value) for name, value in _named(image, mask, edge).items()}
    outputs = tf.saved_model.load(path).signatures['serving_default'](**inputs)
    return outputs['inpainted'].numpy(), outputs['x_stage2'].numpy()


def run_onnx(path, image, mask, edge=None):
    """Runs an exported ONNX file with ONNX Runtime on CPU (`edge`: a guided export's); returns
    (inpainted, x_stage2)."""
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    names = [output.name for output in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, _named(image, mask, edge))))
    return _pick(outputs, 'inpainted'), _pick(outputs, 'x_stage2')


def run_tflite(path, image, mask, edge=None):
    """Runs an exported TFLite file with TensorFlow's interpreter (`edge`: a guided export's);
    returns (inpainted, x_stage2)."""
    import tensorflow as tf
    with warnings.catch_warnings(), stderr_to_devnull():  # deprecation, XNNPACK notice
        warnings.simplefilter('ignore', UserWarning)
        runner = tf.lite.Interpreter(model_path=path).get_signature_runner('serving_default')
        outputs = runner(**_named(image, mask, edge))
    return outputs['inpainted'], outputs['x_stage2']


RUNNERS = {'saved_model': run_saved_model, 'onnx': run_onnx, 'tflite': run_tflite}


def check_inputs(height=None, width=None, guided=False):
    """A deterministic test image and mask (a box hole), and for a guided generator an edge
    image (a cross of lines through the hole): uint8 (1, H, W, 3), (1, H, W, 1) [, (1, H, W, 1)]."""
    height, width = height or 61, width or 77  # not multiples of 8: the padding is exercised
    y, x = np.mgrid[:height, :width]
    image = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                      (x * y) % 256], axis=-1).astype(np.uint8)
    mask = np.zeros((height, width, 1), np.uint8)
    mask[height // 4:height // 2, width // 3:2 * width // 3] = 255
    if not guided:
        return image[None], mask[None]
    edge = np.zeros((height, width, 1), np.uint8)
    edge[3 * height // 8, :] = edge[:, width // 2] = 255
    return image[None], mask[None], edge[None]


def check_request(fmt, height, width):
    """Raises `ExportError` for an unknown format or a size it cannot take."""
    if fmt not in FORMATS:
        raise ExportError(f'unknown format {fmt!r}; use one of {", ".join(FORMATS)}')
    if (height is None) != (width is None):
        raise ExportError('give both --height and --width, or neither (any size)')
    if height is not None and (height < 1 or width < 1):
        raise ExportError(f'--height {height} --width {width}: give positive sizes')
    if fmt == 'tflite' and height is None:
        raise ExportError('TFLite needs a fixed size: give --height and --width')


# The packages each format is written and checked with (all in the `export` extra).
PACKAGES = {'saved_model': ['tensorflow'], 'tflite': ['tensorflow'],
            'onnx': ['tensorflow', 'tf2onnx', 'onnx', 'onnxruntime']}

# What an earlier export of each format looks like: only such an artifact is ever replaced.
EXTENSIONS = {'onnx': '.onnx', 'tflite': '.tflite'}
_SAVED_MODEL_ENTRIES = {'saved_model.pb', 'saved_model.pbtxt', 'fingerprint.pb', 'keras_metadata.pb',
                        'variables', 'assets'}


def check_target(fmt, path, overwrite=False, protected=()):
    """Raises `ExportError` unless `path` may receive an export of `fmt` (before any work).

    The rule: the extension fits the format (`.onnx`, `.tflite`; a SavedModel is a folder, not a
    file name with either extension); the working folder, its parents and the `protected` paths
    (the checkpoint being exported) are never a target nor inside one; an existing target is
    replaced only with `overwrite`, and only if it is an artifact of the same format
    (`recognised_artifact`), never a folder holding anything else.

    Args:
        fmt: one of `FORMATS`.
        path: the target.
        overwrite: whether an existing artifact of the same format may be replaced.
        protected: paths that must survive the export (files or folders).
    """
    name = path
    path = os.path.abspath(path)
    if files.is_same_or_inside(os.getcwd(), path):
        raise ExportError(f'{name}: is the working folder or one above it; give a new file or '
                          f'folder name')
    for kept in protected:
        if kept and os.path.lexists(kept) and files.is_same_or_inside(kept, path):
            raise ExportError(f'{name}: would replace the checkpoint {kept} being exported; give '
                              f'another output path')
    extension = os.path.splitext(path.rstrip('/\\'))[1].lower()
    if fmt in EXTENSIONS and extension != EXTENSIONS[fmt]:
        raise ExportError(f'{name}: an export as {_FORMAT_NAMES[fmt]} needs the extension '
                          f'{EXTENSIONS[fmt]}; name it e.g. deepfill{EXTENSIONS[fmt]}')
    if fmt == 'saved_model' and extension in EXTENSIONS.values():
        raise ExportError(f'{name}: a SavedModel is a folder; give a folder name without '
                          f'{extension} (or --format {extension[1:]})')
    if not os.path.lexists(path):
        parent = os.path.dirname(path)
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            raise ExportError(f'{name}: cannot create it under {parent} (a file, or not writable); '
                              f'choose a writable folder')
        return
    if os.path.islink(path):
        raise ExportError(f'{name}: is a symbolic link; give a path that is not one')
    if fmt == 'saved_model' and os.path.isdir(path) and not os.listdir(path):
        return  # an empty folder, e.g. made for the export: nothing in it to lose
    found = recognised_artifact(path)
    if found != fmt:
        what = f'a {_FORMAT_NAMES[found]}' if found else (
            'a folder holding other files' if os.path.isdir(path) else 'a file that is not an export')
        raise ExportError(f'{name}: exists and is {what}; it is never replaced by a '
                          f'{_FORMAT_NAMES[fmt]}: give another output path')
    if not overwrite:
        raise ExportError(f'{name}: exists (an earlier {_FORMAT_NAMES[fmt]}); pass --overwrite to '
                          f'replace it, or give another output path')


_FORMAT_NAMES = {'saved_model': 'SavedModel folder', 'onnx': 'ONNX file', 'tflite': 'TFLite file'}


def _is_saved_model(folder):
    """`saved_model.pb` and nothing but a SavedModel's entries, all the way down: `variables/`
    holds only `variables.index` and `variables.data-*`, `assets/` nothing (our exports write
    none), so that a user's file anywhere inside makes it not one."""
    entries = set(os.listdir(folder))
    if 'saved_model.pb' not in entries or not entries <= _SAVED_MODEL_ENTRIES:
        return False
    for name in entries & {'variables', 'assets'}:
        inside = os.path.join(folder, name)
        if not os.path.isdir(inside) or os.path.islink(inside):
            return False
        for entry in os.listdir(inside):
            if name == 'assets' or not _VARIABLES_FILE.fullmatch(entry) or not os.path.isfile(
                    os.path.join(inside, entry)):
                return False
    return True


_VARIABLES_FILE = re.compile(r'variables\.(index|data-\d+-of-\d+)')


def recognised_artifact(path):
    """The format of an export at `path`, or None when it is not one: a folder with
    `saved_model.pb` and nothing but a SavedModel's entries; a `.onnx` file that starts as an
    ONNX model (protobuf field 1, `ir_version`); a `.tflite` file with the `TFL3` identifier."""
    if os.path.isdir(path):
        return 'saved_model' if _is_saved_model(path) else None
    extension = os.path.splitext(path)[1].lower()
    try:
        with open(path, 'rb') as handle:
            head = handle.read(8)
    except OSError:
        return None
    if extension == '.onnx' and head[:1] == b'\x08':
        return 'onnx'
    if extension == '.tflite' and head[4:8] == b'TFL3':
        return 'tflite'
    return None


def export(generator, fmt, path, height=None, width=None, overwrite=False, protected=()):
    """Exports, then runs the artifact and the Keras model on `check_inputs`.

    `check_target` decides first whether `path` may be written (an existing earlier export of the
    same format only with `overwrite`). The artifact is written beside `path` under a temporary
    name (`inpaint.files`) and moved there only once it has run, so a failed export leaves
    nothing behind (missing parent folders are created, and removed again on failure).
    Returns:
        (max |x_stage2 difference|, number of differing `inpainted` values).
    Raises:
        ExportError: `path` may not be written, the format cannot express the model, or the
            artifact does not load or run.
    """
    check_request(fmt, height, width)
    check_target(fmt, path, overwrite, protected)
    with files.written_atomically(path) as partial:
        unsupported = []
        if fmt == 'saved_model':
            model = export_saved_model(generator, partial, height, width)
        elif fmt == 'onnx':
            model, unsupported = export_onnx(generator, partial, height, width)
        else:
            model = export_tflite(generator, partial, height, width)
        inputs = check_inputs(height, width, generator.guided)
        try:
            got_image, got_x2 = RUNNERS[fmt](partial, *inputs)
        except Exception as error:
            cause = (f'tf2onnx could not convert {", ".join(unsupported)}' if unsupported
                     else f'{type(error).__name__}: {str(error).splitlines()[0]}')
            raise ExportError(f'{fmt} export of this model does not run ({cause})') from error
        want = model(*inputs)
        diff = float(np.max(np.abs(got_x2 - np.asarray(want['x_stage2']))))
        changed = int(np.sum(got_image != np.asarray(want['inpainted'])))
    return diff, changed


def checkpoint_paths(checkpoint_dir):
    """What an export must never replace: the checkpoint folder (the folder of a prefix)."""
    return (checkpoint_dir,) if os.path.isdir(checkpoint_dir) else (os.path.dirname(
        os.path.abspath(checkpoint_dir)),)


def _pick(outputs, name):
    """An ONNX output by name: tf2onnx keeps the dict keys, possibly with a suffix."""
    for key, value in outputs.items():
        if key == name or key.startswith(name):
            return value
    raise ExportError(f'the ONNX model has no output named {name!r} (outputs: {sorted(outputs)})')


def _onnx_blockers(messages):
    """'OpName (in layer)' for each node tf2onnx reported as unsupported or failed to convert."""
    found = []
    for message in messages:
        match = (re.search(r"Tensorflow op \[(\S+): (\w+)\] is not supported", message)
                 or re.search(r"Failed to convert node '(\S+)' \(fct=<bound method (\w+)\.", message))
        if match:
            node, op = match.groups()
            layers = [p for p in node.split('/')[:-1] if not p.startswith('deepfill_v2_serving')]
            where = re.sub(r'_\d+$', '', layers[-1]) if layers else 'the serving function'
            entry = f'{op} (in {where})'
            if entry not in found:
                found.append(entry)
    return found


def _tflite_blockers(message):
    """The ops named in a TFLite ConverterError ('tf.X' op is neither a custom op nor a flex op)."""
    ops = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)))
    ops += sorted(set(re.findall(r"failed to legalize operation 'tf\.(\w+)'", message)) - set(ops))
    if ops:
        return ', '.join(ops) + ' (not TFLite built-ins)'
    return message.strip().splitlines()[-1][:300]


@contextlib.contextmanager
def _collect_logs(name):
    """Collects the messages of logger `name` (and stops them reaching stderr) inside the block."""
    messages = []

    class Collector(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger(name)
    handler, propagate, level = Collector(level=logging.ERROR), logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.ERROR)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = propagate, level


@contextlib.contextmanager
def _quiet_stdout():
    """tf2onnx prints its progress to stdout; this command prints its own summary instead."""
    with open(os.devnull, 'w') as null, contextlib.redirect_stdout(null):
        yield
