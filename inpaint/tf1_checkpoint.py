"""TensorFlow-only: reading and writing checkpoints in TensorFlow's formats.

The authors' releases are TF1 name-based checkpoints (`snap-0.index` + `.data`), and runs of
earlier versions of this project were `tf.train.Checkpoint`s keyed by the authors' names. Both are
read here into {authors' name: NumPy array}; `inpaint.checkpoint` does everything else and is
backend-neutral. Import this module only when such a file is read or written.
"""
import os
import re

import numpy as np
import tensorflow as tf

OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'


class TF1ReadError(ValueError):
    """The .index/.data files cannot be read.

    Attributes:
        tensor: the tensor whose read failed, or None (the index itself).
        reason: 'checksum' (the data does not match the tensor's CRC32C in the index: damaged),
            'truncated' (the data file ends before the tensor), 'missing' (no data file) or
            'unreadable'.
    """

    def __init__(self, message, tensor=None, reason='unreadable'):
        super().__init__(message)
        self.tensor, self.reason = tensor, reason


def read_tensors(prefix):
    """Reads a TF checkpoint lazily.

    Args:
        prefix: `.../snap-0` (the `.index` file without its extension).
    Returns:
        (shapes, load): shapes maps the authors' name (or the raw key, for tensors outside the
        model such as optimizer counters) -> shape tuple; load(name) returns the float32 array.
    Raises:
        TF1ReadError: the files are damaged or incomplete.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        raw_shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError, IndexError) as error:
        raise TF1ReadError(error.__class__.__name__) from None
    # Authors' name -> key in the file; a training checkpoint stores them as object attributes.
    keys = (_object_keys(raw_shapes) if OBJECT_GRAPH_KEY in raw_shapes
            else {name: name for name in raw_shapes})
    shapes = {name: tuple(raw_shapes[key]) for name, key in keys.items()}

    def load(name):
        try:
            return np.asarray(reader.get_tensor(keys[name]), np.float32)
        except (tf.errors.OpError, ValueError, IndexError) as error:  # IndexError: truncated .data
            text = str(error)
            reason = ('checksum' if 'Checksum does not match' in text else
                      'truncated' if isinstance(error, IndexError) or 'Read less bytes' in text else
                      'missing' if 'No such file' in text else 'unreadable')
            raise TF1ReadError(f'{error.__class__.__name__} reading {name}', name, reason) from None
    return shapes, load


def _object_keys(shapes):
    """Authors' name -> key, for a checkpoint written by an earlier `training_checkpoint`.

    Keys look like `generator/inpaint_net.Sconv1.Skernel/.ATTRIBUTES/VARIABLE_VALUE` (TF escapes
    '/' as '.S' and '.' as '..'); everything else (optimizer, step) keeps its own key.
    """
    keys = {}
    suffix = '/.ATTRIBUTES/VARIABLE_VALUE'
    for key in shapes:
        top, _, rest = key.partition('/')
        if top in ('generator', 'discriminator') and rest.endswith(suffix) and '/' not in rest[:-len(suffix)]:
            escaped = rest[:-len(suffix)]
            keys[re.sub(r'\.(S|\.)', lambda m: '/' if m.group(1) == 'S' else '.', escaped)] = key
        elif key != OBJECT_GRAPH_KEY:
            keys[key] = key
    return keys


def save_tf1_checkpoint(prefix, tensors):
    """Writes a name-based (TF1 `tf.train.Saver` format) checkpoint and its `checkpoint` file.

    Args:
        prefix: e.g. `folder/snap-0`.
        tensors: name -> array.
    """
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tf.convert_to_tensor(tensors[n]) for n in names])
    with open(os.path.join(folder, 'checkpoint'), 'w') as handle:
        base = os.path.basename(prefix)
        handle.write(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')
