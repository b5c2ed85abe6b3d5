"""Training checkpoints of `train.py` runs: one self-checking HDF5 file per saved step.

`<log_dir>/ckpt-<step>.h5` holds the generator's and discriminator's tensors under the authors'
names (`model/inpaint_net/conv1/kernel`, ...; the spectral-norm `u` included), the optimizer's
variables in order (`optimizer/<index>`, each with its Keras path), and the step. Every dataset
carries a CRC-32 of its bytes, checked on reading, so a truncated or bit-flipped file is found and
the run resumes from the newest intact one. Files are written under a temporary name and renamed,
so a crash mid-save never leaves a half-written `ckpt-*.h5`. Backend-neutral (h5py and NumPy).
"""
import dataclasses
import os
import re
import zlib

import h5py
import numpy as np
from absl import logging

from inpaint import files

PREFIX = 'ckpt-'
SUFFIX = '.h5'
FORMAT_NAME = 'deepfill-tf2 training state'
_NAME = re.compile(re.escape(PREFIX) + r'(\d+)' + re.escape(SUFFIX) + '$')


class DamagedCheckpointError(ValueError):
    """A training checkpoint file that cannot be read or fails its checksum."""


def path_for(log_dir, step):
    """`<log_dir>/ckpt-<step>.h5`."""
    return os.path.join(log_dir, f'{PREFIX}{int(step)}{SUFFIX}')


def list_checkpoints(log_dir):
    """[(step, path)] of the training checkpoints in `log_dir`, oldest first."""
    try:
        names = os.listdir(log_dir)
    except OSError:
        return []
    found = [(int(m.group(1)), os.path.join(log_dir, name)) for name in names
             for m in [_NAME.match(name)] if m]
    return sorted(found)


def _crc(array):
    return zlib.crc32(np.ascontiguousarray(array).tobytes()) & 0xFFFFFFFF


@dataclasses.dataclass
class TrainingState:
    """A training checkpoint read back: model tensors by authors' name, optimizer values, step."""
    path: str
    step: int
    model: dict
    optimizer: list
    optimizer_paths: list

    def shapes(self):
        return {name: value.shape for name, value in self.model.items()}

    def model_tensor(self, name):
        return self.model[name]


class NotOursError(ValueError):
    """A file at a checkpoint's path that this project did not write: never replaced."""


def is_ours(path):
    """Whether `path` is a training checkpoint of this project (readable, with its format tag)."""
    try:
        with h5py.File(path, 'r') as handle:
            return handle.attrs.get('format') == FORMAT_NAME
    except Exception:  # pylint: disable=broad-except  (unreadable: not provably ours)
        return False


def write(path, step, model_tensors, optimizer_values=(), optimizer_paths=()):
    """Writes a training checkpoint atomically; replaces only an earlier checkpoint of ours.

    Raises:
        NotOursError: a file that is not one of this project's checkpoints is at `path`.

    Args:
        path: `ckpt-<step>.h5` (see `path_for`).
        step: iterations completed.
        model_tensors: {authors' name: array}.
        optimizer_values: the optimizer's variables' values, in order.
        optimizer_paths: their Keras paths (checked on restore).
    """
    if os.path.lexists(path) and not is_ours(path):
        raise NotOursError(f'{path}: exists and is not a training checkpoint of this project; '
                           f'move it away or use another log_dir')
    with files.written_atomically(path) as temporary, h5py.File(temporary, 'w') as handle:
        handle.attrs['format'] = FORMAT_NAME
        handle.attrs['step'] = int(step)
        for name, value in model_tensors.items():
            dataset = handle.create_dataset(f'model/{name}', data=np.asarray(value))
            dataset.attrs['crc32'] = _crc(dataset[()])
        for index, (value, var_path) in enumerate(zip(optimizer_values, optimizer_paths)):
            dataset = handle.create_dataset(f'optimizer/{index:04d}', data=np.asarray(value))
            dataset.attrs['crc32'] = _crc(dataset[()])
            dataset.attrs['path'] = str(var_path)


def remove_older(log_dir, keep):
    """Checkpoint rotation: removes all but the `keep` newest checkpoints of `log_dir`, and only
    files that are this project's training checkpoints (`ckpt-<step>.h5` with its format tag); a
    file of that name that is anything else is left alone. Returns the paths removed."""
    removed, found = [], list_checkpoints(log_dir)
    for _, path in found[:max(len(found) - max(int(keep), 1), 0)]:  # the newest is always kept
        if is_ours(path):
            os.remove(path)
            removed.append(path)
        else:
            logging.warning('%s: not a training checkpoint of this project; rotation leaves it', path)
    return removed


def read(path):
    """Reads and checks a training checkpoint.

    Returns:
        a `TrainingState`.
    Raises:
        DamagedCheckpointError: unreadable, truncated, or a checksum differs.
    """
    try:
        with h5py.File(path, 'r') as handle:
            if handle.attrs.get('format') != FORMAT_NAME:
                raise DamagedCheckpointError(f'{path}: not a training checkpoint of this project')
            model = {}
            handle['model'].visititems(
                lambda name, item: model.__setitem__(name, _checked(item, path))
                if isinstance(item, h5py.Dataset) else None)
            optimizer, paths = [], []
            for key in sorted(handle.get('optimizer', {})):
                item = handle['optimizer'][key]
                optimizer.append(_checked(item, path))
                paths.append(str(item.attrs['path']))
            step = int(handle.attrs['step'])
    except DamagedCheckpointError:
        raise
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError... for damaged files
        raise DamagedCheckpointError(f'{path}: unreadable ({error.__class__.__name__})') from None
    return TrainingState(path, step, model, optimizer, paths)


def _checked(dataset, path):
    value = dataset[()]
    if _crc(value) != int(dataset.attrs.get('crc32', -1)):
        raise DamagedCheckpointError(f'{path}: checksum of {dataset.name} differs (the file is damaged)')
    return value


def latest_intact(log_dir):
    """The newest checkpoint in `log_dir` that reads back intact (a `TrainingState`); warns about
    the damaged ones passed over.

    Raises:
        DamagedCheckpointError: there are checkpoints but none is intact (or there are none).
    """
    damaged = []
    for _, path in reversed(list_checkpoints(log_dir)):
        try:
            return read(path)
        except DamagedCheckpointError as error:
            logging.warning('Skipping a damaged checkpoint: %s', error)
            damaged.append(os.path.basename(path))
    if damaged:
        raise DamagedCheckpointError(f'{log_dir}: every checkpoint is damaged ({", ".join(damaged)}); '
                                     f'start a new log_dir or restore the files')
    raise DamagedCheckpointError(f'{log_dir}: no {PREFIX}*{SUFFIX} checkpoint here')
