"""Loading checkpoints strictly, converting them, and the backend-neutral weights format.

Formats, told apart by their files:
- **weights** (this project's backend-neutral format; `checkpoints/default` ships in it): a folder
  with `deepfill.json` (widths; `guided` for an edge-guided model, absent = False), `generator.weights.h5` and, optionally, the discriminator as
  `discriminator.weights.h5` or sharded (`discriminator.weights.json` + shards). Keras' own
  `save_weights` files of our models: loadable on TensorFlow, JAX and PyTorch.
- **run**: a `train.py` log_dir; its newest intact `ckpt-<step>.h5` (see `inpaint.training_state`).
- **TF1**: the authors' release folder (with `checkpoint`, or `checkpoint.txt` as Google Drive saves
  it), or a prefix (`.../snap-0`); also runs of earlier versions of this project. Reading these needs
  TensorFlow (`inpaint.tf1_checkpoint`); elsewhere the error says how to convert them once.

The widths of both networks, and whether they are edge-guided (the generator's `conv1` takes 6
channels, not 5), are read from the files. Every tensor the model needs must be present
with the right shape; every tensor under the model scopes must be used; optimizer slots and
counters are ignored on purpose and reported. `convert` (the command `python -m
inpaint.commands.convert SRC DST`) converts any loadable checkpoint to the weights format (or, with
`--format tf1`, to the authors' layout).
"""
import dataclasses
import glob
import json
import os
import re

import numpy as np

from inpaint import extras, files, releases, training_state
from inpaint.discriminator import build_discriminator
from inpaint.generator import build_generator
from inpaint.layers import GatedUpsample

GENERATOR_SCOPE = 'inpaint_net'
# conv1's input channels: RGB, ones, mask; guided: RGB, edge, ones, mask.
GENERATOR_CHANNELS = {5: False, 6: True}
DISCRIMINATOR_SCOPE = 'discriminator/sn_patch_gan'
# Optimizer slots of a TF1 training snapshot, under the model scopes: ignored on purpose (as are
# tensors outside the scopes: beta1_power, beta2_power, lr, global_step, our optimizer and step).
IGNORED_SUFFIXES = ('/Adam', '/Adam_1')
STATE_FILES = ('checkpoint', 'checkpoint.txt')
MANIFEST = 'deepfill.json'
GENERATOR_FILE = 'generator.weights.h5'
DISCRIMINATOR_FILE = 'discriminator.weights.h5'
DISCRIMINATOR_SHARDED = 'discriminator.weights.json'
FORMAT_NAME = 'deepfill-tf2 weights'
# Keras' `max_shard_size` is in GB: shards stay under the repository's 20 MB a file.
SHARD_GB = 0.015


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file or tensor and the fix."""


@dataclasses.dataclass
class LoadReport:
    """What a load did: tensor names loaded, ignored on purpose, and where they came from."""
    prefix: str
    loaded: list
    ignored: list
    generator_cnum: int
    discriminator_cnum: int = None  # None when the checkpoint has no discriminator
    format: str = 'tf1'
    guided: bool = False  # edge-guided networks (`InpaintGenerator.guided`)


def resolve_prefix(path):
    """Turns a TF1 folder, a prefix or a state file into a checkpoint prefix (`.../snap-0`).

    Raises:
        CheckpointError: nothing loadable there.
    """
    if os.path.isfile(path + '.index'):
        return path
    if os.path.isfile(path) and os.path.basename(path) in STATE_FILES:
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise CheckpointError(f'{path}: no such checkpoint folder or prefix; give the folder with '
                              f'`checkpoint` and `snap-*.index`, or a prefix like .../snap-0')
    for state in STATE_FILES:
        state_path = os.path.join(path, state)
        if os.path.isfile(state_path):
            try:
                with open(state_path, encoding='utf-8') as handle:
                    found = re.search(r'^model_checkpoint_path:\s*"(.*)"', handle.read(), re.M)
            except (UnicodeDecodeError, OSError):
                found = None
            if not found:
                raise CheckpointError(f'{state_path}: no model_checkpoint_path line; the file is '
                                      f'damaged, download or export it again')
            named = found.group(1)
            # The authors' state files may hold absolute paths from their machine.
            for candidate in (os.path.join(path, named), os.path.join(path, os.path.basename(named))):
                if os.path.isfile(candidate + '.index'):
                    return candidate
            raise CheckpointError(f'{state_path}: names {named!r} but {named}.index is not in '
                                  f'{path}; download the .index and .data files too')
    indexes = sorted(name[:-len('.index')] for name in os.listdir(path) if name.endswith('.index'))
    if len(indexes) == 1:
        return os.path.join(path, indexes[0])
    if not indexes:
        raise CheckpointError(f'{path}: no checkpoint here (no {MANIFEST}, no `checkpoint` file and '
                              f'no *.index); put the authors\' release folder there (see '
                              f'checkpoints/README.md) or convert one with '
                              f'python -m inpaint.commands.convert')
    raise CheckpointError(f'{path}: several checkpoints ({", ".join(indexes)}) and no '
                          f'`checkpoint` file; give the prefix, e.g. {os.path.join(path, indexes[-1])}')


def generator_table(generator):
    """Authors' variable name -> generator variable, e.g. `inpaint_net/conv1/kernel`."""
    table = {}
    for name, layer in generator.conv_layers().items():
        conv = layer.conv if isinstance(layer, GatedUpsample) else layer
        scope = f'{GENERATOR_SCOPE}/{name}/{name}_conv' if conv is not layer else f'{GENERATOR_SCOPE}/{name}'
        table[f'{scope}/kernel'] = conv.kernel
        table[f'{scope}/bias'] = conv.bias
    return table


def discriminator_table(discriminator):
    """Authors' variable name -> discriminator variable, including `kernel_sn/u`."""
    table = {}
    for conv in discriminator.convs:
        scope = f'{DISCRIMINATOR_SCOPE}/{conv.name}'
        table[f'{scope}/kernel'] = conv.kernel
        table[f'{scope}/bias'] = conv.bias
        table[f'{scope}/kernel_sn/u'] = conv.u
    return table


def model_tensors(generator, discriminator=None):
    """{authors' name: float32 NumPy array} of both models' weights."""
    table = dict(generator_table(generator))
    if discriminator is not None:
        table.update(discriminator_table(discriminator))
    return {name: np.asarray(variable.numpy(), np.float32) for name, variable in table.items()}


def load_tensors(tensors, source, with_discriminator=True, dtype=None):
    """Builds the models whose widths the tensors' shapes say and assigns every tensor strictly.

    Args:
        tensors: (shapes, load): {authors' name (or other key): shape} and load(name) -> array.
        source: the file or prefix, for messages.
        with_discriminator: also build and load the discriminator when the tensors have one.
        dtype: the models' Keras dtype policy (default the global one); weights stay float32.
    Returns:
        (generator, discriminator or None, LoadReport).
    Raises:
        CheckpointError: missing, unused or mis-shaped tensor (named).
    """
    shapes, load = tensors
    first = f'{GENERATOR_SCOPE}/conv1/kernel'
    if first not in shapes:
        raise CheckpointError(f'{source}: no tensor {first}; this is not a DeepFill v2 checkpoint '
                              f'(v1 checkpoints and other models are not supported)')
    cnum, channels = int(shapes[first][-1]), int(shapes[first][2])
    if channels not in GENERATOR_CHANNELS:
        raise CheckpointError(f'{source}: tensor {first} takes {channels} input channels; DeepFill '
                              f'v2\'s takes 5 (RGB, ones, mask) or 6 guided (RGB, edge, ones, mask)')
    guided = GENERATOR_CHANNELS[channels]
    discriminator, d_cnum = None, None
    d_first = f'{DISCRIMINATOR_SCOPE}/conv1/kernel'
    if with_discriminator and d_first in shapes:  # first: its mode check builds nothing
        d_cnum, channels = int(shapes[d_first][-1]), int(shapes[d_first][2])
        discriminator = _discriminator(d_cnum, channels, guided, f'{source}: tensor {d_first}',
                                       dtype)
    generator = build_generator(cnum, guided, dtype=dtype)
    table = generator_table(generator)
    if discriminator is not None:
        table.update(discriminator_table(discriminator))
    scopes = (GENERATOR_SCOPE + '/',) + ((DISCRIMINATOR_SCOPE + '/',) if discriminator else ())

    ignored = []
    for name in sorted(shapes):
        if name in table:
            continue
        if name.startswith(scopes) and not name.endswith(IGNORED_SUFFIXES):
            raise CheckpointError(f'{source}: tensor {name} {shapes[name]} has no place in the '
                                  f'model (width {cnum}); the checkpoint is not of this architecture')
        ignored.append(name)  # optimizer slots, counters, the discriminator when not asked for
    missing = [name for name in table if name not in shapes]
    if missing:
        raise CheckpointError(f'{source}: missing tensor {missing[0]}' +
                              (f' and {len(missing) - 1} more' if len(missing) > 1 else '') +
                              '; the checkpoint is incomplete or of another model')
    for name, variable in table.items():
        if tuple(shapes[name]) != tuple(variable.shape):
            raise CheckpointError(f'{source}: tensor {name} has shape {tuple(shapes[name])}, '
                                  f'the model needs {tuple(variable.shape)}; the checkpoint is not '
                                  f'of this architecture')
    for name, variable in table.items():
        variable.assign(load(name))
    return generator, discriminator, LoadReport(source, sorted(table), ignored, cnum, d_cnum,
                                                guided=guided)


def _discriminator(cnum, channels, guided, where, dtype=None):
    """`build_discriminator`, its channel count checked against the generator's mode."""
    try:
        return build_discriminator(cnum, channels, guided, dtype=dtype)
    except ValueError as error:
        raise CheckpointError(f'{where}: {error} (the generator is '
                              f'{"guided" if guided else "not guided"}); the checkpoint is not of '
                              f'this architecture') from None


def checkpoint_format(path):
    """'weights', 'run' or 'tf1' for a path that exists; raises CheckpointError otherwise."""
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST)):
        return 'weights'
    if os.path.isdir(path) and training_state.list_checkpoints(path):
        return 'run'
    if os.path.isfile(path) and path.endswith(training_state.SUFFIX):
        return 'run'
    if not os.path.exists(path) and not os.path.isfile(path + '.index'):
        raise CheckpointError(f'{path}: no such checkpoint folder or file; give a folder made by '
                              f'python -m inpaint.commands.convert, a train.py log_dir, or the '
                              f'authors\' release folder')
    return 'tf1'


def load_models(path, with_discriminator=True, dtype=None):
    """Builds the generator (and discriminator when present) and loads a checkpoint into them.

    Args:
        path: a weights folder, a train.py log_dir (or one of its ckpt-*.h5), the authors' release
            folder or prefix.
        with_discriminator: also load the discriminator if the checkpoint has one.
        dtype: the models' Keras dtype policy, given at construction (default the global one).
    Returns:
        (generator, discriminator or None, LoadReport).
    Raises:
        CheckpointError: unreadable checkpoint, missing, unused or mis-shaped tensor (named).
    """
    path = os.fspath(path)
    kind = checkpoint_format(path)
    if kind == 'weights':
        return load_weights_folder(path, with_discriminator, dtype)
    if kind == 'run':
        try:
            state = (training_state.read(path) if os.path.isfile(path)
                     else training_state.latest_intact(path))
        except training_state.DamagedCheckpointError as error:
            raise CheckpointError(f'{error}; export it again or use an intact checkpoint') from None
        generator, discriminator, report = load_tensors(
            (state.shapes(), state.model_tensor), state.path, with_discriminator, dtype)
        report.format = 'run'
        return generator, discriminator, report
    prefix = resolve_prefix(path)
    release = releases.identify(prefix)
    if release is not None:  # a download that broke off: say so before TensorFlow reads it
        problem = releases.data_size_problem(prefix, release)
        if problem:
            raise CheckpointError(problem)
    missing = extras.tensorflow_missing("reading a TF1 checkpoint (the authors' format)")
    if missing:
        raise CheckpointError(f'{prefix}: {missing} (or convert it once where TensorFlow is: '
                              f'python -m inpaint.commands.convert {path} FOLDER, then use '
                              f'FOLDER)')
    from inpaint import tf1_checkpoint
    try:
        tensors = tf1_checkpoint.read_tensors(prefix)
        return load_tensors(tensors, prefix, with_discriminator, dtype)
    except tf1_checkpoint.TF1ReadError as error:
        raise CheckpointError(_tf1_read_problem(prefix, error, release)) from None


def _tf1_read_problem(prefix, error, release):
    """One line for a `tf1_checkpoint.TF1ReadError`, naming the data file when it is at fault."""
    shards = sorted(glob.glob(glob.escape(prefix) + '.data-*-of-*'))
    data = shards[0] if len(shards) == 1 else prefix + ('.data-*' if shards else releases.DATA_SUFFIX)
    again = (f'download it again (python -m inpaint.commands.convert --verify '
             f'{os.path.dirname(prefix) or "."} checks it against the {release.name} release\'s '
             f'sha256)' if release else 'download or export it again')
    if error.reason == 'checksum':
        return (f'{data}: tensor {error.tensor} does not match its checksum in {prefix}.index (the '
                f'data file is damaged); {again}')
    if error.reason == 'truncated':
        return f'{data}: ends before tensor {error.tensor} (the data file is incomplete); {again}'
    if error.reason == 'missing':
        return f'{data}: missing; download the .data file too, next to {prefix}.index'
    return (f'{prefix}: cannot read the checkpoint ({error}); the .index/.data files are damaged '
            f'or incomplete, download or export them again')


def save_weights_folder(folder, generator, discriminator=None, overwrite=False):
    """Writes the backend-neutral weights format (see the module docstring) as the folder `folder`.

    The whole folder is written under a temporary name beside it and renamed (`inpaint.files`), so
    an interrupted save leaves the earlier folder or the new one. `folder` may be missing or
    empty; an earlier weights folder is replaced only with `overwrite`; a folder holding anything
    else is never replaced (`weights_folder_problem`).

    Raises:
        CheckpointError: `folder` may not be replaced.
    """
    problem = weights_folder_problem(folder, overwrite)
    if problem:
        raise CheckpointError(problem)
    manifest = {'format': FORMAT_NAME, 'version': 1, 'cnum_generator': generator.cnum,
                'guided': generator.guided, 'cnum_discriminator': None,
                'discriminator_channels': None}
    with files.written_atomically(folder) as partial:
        os.mkdir(partial)
        generator.save_weights(os.path.join(partial, GENERATOR_FILE))
        if discriminator is not None:
            manifest['cnum_discriminator'] = discriminator.cnum
            manifest['discriminator_channels'] = int(discriminator.convs[0].kernel.shape[2])
            discriminator.save_weights(os.path.join(partial, DISCRIMINATOR_SHARDED),
                                       max_shard_size=SHARD_GB)
        with open(os.path.join(partial, MANIFEST), 'w') as handle:
            json.dump(manifest, handle, indent=1)


def weights_folder_problem(folder, overwrite=False):
    """Why the weights format may not be written as `folder`, or None: it may when `folder` is
    missing or an empty folder, or (with `overwrite`) an earlier weights folder holding only the
    format's files."""
    if not os.path.lexists(folder):
        return None
    if not os.path.isdir(folder) or os.path.islink(folder):
        return f'{folder}: exists and is not a folder; give a new folder name'
    names = os.listdir(folder)
    if not names:
        return None
    ours = MANIFEST in names and all(
        name in (MANIFEST, GENERATOR_FILE, DISCRIMINATOR_FILE, DISCRIMINATOR_SHARDED)
        or re.fullmatch(r'discriminator_\d+\.weights\.h5', name) for name in names)
    if not ours:
        return (f'{folder}: holds other files; it is never replaced: give a new or empty folder')
    if not overwrite:
        return f'{folder}: holds earlier weights; pass --overwrite to replace them, or give a new folder'
    return None


def load_weights_folder(folder, with_discriminator=True, dtype=None):
    """Loads the weights format; see `load_models`."""
    manifest_path = os.path.join(folder, MANIFEST)
    try:
        with open(manifest_path, encoding='utf-8') as handle:
            manifest = json.load(handle)
        cnum = int(manifest['cnum_generator'])
        guided = manifest.get('guided', False)  # absent in folders written before the guided mode
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f'{manifest_path}: unreadable ({error.__class__.__name__}); the folder '
                              f'is damaged, convert or download it again') from None
    if manifest.get('format') != FORMAT_NAME:
        raise CheckpointError(f'{manifest_path}: not a {FORMAT_NAME} manifest')
    if not isinstance(guided, bool):
        raise CheckpointError(f'{manifest_path}: "guided" is {guided!r}; it must be true or false')
    generator = build_generator(cnum, guided, dtype=dtype)
    _load_keras_weights(generator, os.path.join(folder, GENERATOR_FILE))
    discriminator, d_cnum = None, manifest.get('cnum_discriminator')
    if with_discriminator and d_cnum:
        discriminator = _discriminator(int(d_cnum), int(manifest['discriminator_channels']), guided,
                                       manifest_path, dtype)
        sharded = os.path.join(folder, DISCRIMINATOR_SHARDED)
        _load_keras_weights(discriminator, sharded if os.path.isfile(sharded)
                            else os.path.join(folder, DISCRIMINATOR_FILE))
    names = sorted(generator_table(generator)) + (
        sorted(discriminator_table(discriminator)) if discriminator is not None else [])
    return generator, discriminator, LoadReport(folder, names, [], cnum, d_cnum, 'weights', guided)


def _load_keras_weights(model, path):
    """`model.load_weights(path)`, with every weight checked to have changed shape-for-shape."""
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: missing; the weights folder is incomplete, convert or '
                              f'download it again')
    try:
        model.load_weights(path)
    except Exception as error:  # h5py/Keras raise many types for damaged or mismatched files
        detail = ' '.join(str(error).split())[:200]
        raise CheckpointError(f'{path}: cannot load ({error.__class__.__name__}: {detail}); the '
                              f'file is damaged or of another width, convert or download it again') from None


def export_tf1(prefix, generator, discriminator=None, overwrite=False):
    """Saves models in the authors' layout and names, readable by the original TF1 code.

    The `.index`, `.data` and `checkpoint` state files are written in a temporary folder beside
    them and moved into place one rename each, the state file last (`inpaint.files`).

    Raises:
        CheckpointError: TensorFlow, which writes the format, is not installed; or the files
            would replace another checkpoint's, or an earlier export's without `overwrite`
            (`tf1_destination_problem`).
    """
    missing = extras.tensorflow_missing('writing the TF1 format (--format tf1)')
    if missing:
        raise CheckpointError(f'{prefix}: {missing}')
    from inpaint import tf1_checkpoint
    problem = tf1_destination_problem(prefix, overwrite)
    if problem:
        raise CheckpointError(problem)
    folder, base = os.path.split(os.path.abspath(prefix))
    with files.files_written_atomically(folder, last=('checkpoint',)) as staging:
        tf1_checkpoint.save_tf1_checkpoint(os.path.join(staging, base),
                                           model_tensors(generator, discriminator))


def tf1_destination_problem(prefix, overwrite=False):
    """Why a TF1 checkpoint may not be written at `prefix`, or None.

    It writes `<prefix>.index`, `<prefix>.data-00000-of-00001` and the folder's `checkpoint` state
    file. None of them may exist, except (with `overwrite`) as an earlier export of this very
    prefix: a state file that names another checkpoint is never replaced.
    """
    folder, base = os.path.split(os.path.abspath(prefix))
    written = [f'{prefix}.index', f'{prefix}.data-00000-of-00001', os.path.join(folder, 'checkpoint')]
    existing = [path for path in written if os.path.lexists(path)]
    if not existing:
        return None
    state = os.path.join(folder, 'checkpoint')
    if os.path.lexists(state):
        try:
            with open(state, encoding='utf-8') as handle:
                named = set(re.findall(r'"([^"]*)"', handle.read()))
        except (OSError, UnicodeDecodeError):
            named = {None}
        if named - {base, os.path.abspath(prefix)}:
            return (f'{state}: the state file of another checkpoint in {folder}; it is never '
                    f'replaced: write the export to another folder')
    if not overwrite:
        return (f'{existing[0]}: exists (an earlier export); pass --overwrite to replace it, or '
                f'give another prefix')
    return None


def _inside_run(path):
    """The train.py log_dir that contains `path`, or None."""
    folder = os.path.abspath(path)
    while True:
        if os.path.isdir(folder) and (training_state.list_checkpoints(folder)
                                      or os.path.isfile(os.path.join(folder, 'config.yml'))):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def convert(source, destination, fmt='weights', overwrite=False):
    """Converts any loadable checkpoint (the authors' release, a train.py log_dir, a weights
    folder) to the backend-neutral weights folder `destination` (`fmt='weights'`), or to the
    authors' TF1 layout at the prefix `destination` (`fmt='tf1'`).

    Args:
        overwrite: replace an earlier conversion at `destination` (nothing else is replaced).
    Returns:
        the source's `LoadReport`.
    Raises:
        CheckpointError: `destination` is inside a training run (whose checkpoints are never
            touched), is the source (or inside or above it) or holds something else, the source
            cannot be loaded, or `destination` cannot be written.
    """
    run = _inside_run(destination)
    if run is not None:
        raise CheckpointError(f'{destination} is inside the training run {run}; write the export to '
                              f'another folder so that the run\'s checkpoints are never touched')
    if files.is_same_or_inside(source, destination) or files.is_same_or_inside(destination, source):
        raise CheckpointError(f'{destination} is the source itself (or inside or above it); choose '
                              f'another folder')
    problem = (tf1_destination_problem(destination, overwrite) if fmt == 'tf1'
               else weights_folder_problem(destination, overwrite))
    if problem:
        raise CheckpointError(problem)
    generator, discriminator, report = load_models(source)
    try:
        if fmt == 'tf1':
            export_tf1(destination, generator, discriminator, overwrite)
        else:
            save_weights_folder(destination, generator, discriminator, overwrite)
    except OSError as error:
        raise CheckpointError(f'{destination}: cannot write ({error.strerror}); choose a writable '
                              f'folder') from None
    return report
