"""Loading the authors' TF1 checkpoints (and this project's training checkpoints) strictly.

A checkpoint is given as a release folder (with `checkpoint`, or `checkpoint.txt` as Google Drive
saves it), a prefix (`.../snap-0`), or one of our training `log_dir`s. The widths of both networks
are read from the tensors' shapes. Every tensor the model needs must be present with the right
shape; every tensor under the model scopes must be used; optimizer slots and counters are ignored
on purpose and reported.
"""
import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

from inpaint.discriminator import build_discriminator
from inpaint.generator import build_generator
from inpaint.layers import GatedUpsample

GENERATOR_SCOPE = 'inpaint_net'
DISCRIMINATOR_SCOPE = 'discriminator/sn_patch_gan'
# Optimizer slots of a TF1 training snapshot, under the model scopes: ignored on purpose (as are
# tensors outside the scopes: beta1_power, beta2_power, lr, global_step, our optimizer and step).
IGNORED_SUFFIXES = ('/Adam', '/Adam_1')
OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'
STATE_FILES = ('checkpoint', 'checkpoint.txt')


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file or tensor and the fix."""


@dataclasses.dataclass
class LoadReport:
    """What a load did: tensor names loaded, ignored on purpose, and the checkpoint prefix."""
    prefix: str
    loaded: list
    ignored: list
    generator_cnum: int
    discriminator_cnum: int = None  # None when the checkpoint has no discriminator


def resolve_prefix(path):
    """Turns a folder, a prefix or a state file into a checkpoint prefix (`.../snap-0`).

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
            with open(state_path) as handle:
                found = re.search(r'^model_checkpoint_path:\s*"(.*)"', handle.read(), re.M)
            if not found:
                raise CheckpointError(f'{state_path}: no model_checkpoint_path line; the file is '
                                      f'damaged, download it again')
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
        raise CheckpointError(f'{path}: no checkpoint here (no `checkpoint` file and no *.index); '
                              f'put the authors\' release folder there (see checkpoints/README.md)')
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


def training_checkpoint(generator, discriminator, **others):
    """A `tf.train.Checkpoint` for training, keyed by the authors' variable names.

    Keras 3 models are not tracked by `tf.train.Checkpoint` through their layer lists, so the
    variables are given as {authors' name: tf.Variable} under `generator` and `discriminator`;
    `others` (optimizer, step, ...) are added as they are. `load_models` reads what this writes.
    """
    def tracked(table):
        return {name: variable.value for name, variable in table.items()}  # the tf.Variable
    return tf.train.Checkpoint(generator=tracked(generator_table(generator)),
                               discriminator=tracked(discriminator_table(discriminator)), **others)


def load_models(path, with_discriminator=True):
    """Builds the generator (and discriminator when present) and loads a checkpoint into them.

    Args:
        path: release folder, prefix, or training log_dir.
        with_discriminator: also load the discriminator if the checkpoint has one.
    Returns:
        (generator, discriminator or None, LoadReport).
    Raises:
        CheckpointError: unreadable checkpoint, missing, unused or mis-shaped tensor (named).
    """
    prefix = resolve_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        raise CheckpointError(f'{prefix}: cannot read the checkpoint ({error.__class__.__name__}); '
                              f'the .index/.data files are damaged or incomplete') from None
    shapes = reader.get_variable_to_shape_map()
    # Authors' name -> key in the file; a training checkpoint stores them as object attributes.
    keys = _object_keys(shapes) if OBJECT_GRAPH_KEY in shapes else {name: name for name in shapes}
    first = f'{GENERATOR_SCOPE}/conv1/kernel'
    if first not in keys:
        raise CheckpointError(f'{prefix}: no tensor {first}; this is not a DeepFill v2 checkpoint '
                              f'(v1 checkpoints and other models are not supported)')
    cnum = int(shapes[keys[first]][-1])
    generator = build_generator(cnum)
    table = generator_table(generator)
    discriminator, d_cnum = None, None
    d_first = f'{DISCRIMINATOR_SCOPE}/conv1/kernel'
    if with_discriminator and d_first in keys:
        d_cnum, channels = int(shapes[keys[d_first]][-1]), int(shapes[keys[d_first]][2])
        discriminator = build_discriminator(d_cnum, channels)
        table.update(discriminator_table(discriminator))
    scopes = (GENERATOR_SCOPE + '/',) + ((DISCRIMINATOR_SCOPE + '/',) if discriminator else ())

    ignored = []
    for name in sorted(keys):
        if name in table:
            continue
        if name.startswith(scopes) and not name.endswith(IGNORED_SUFFIXES):
            raise CheckpointError(f'{prefix}: tensor {name} {shapes[keys[name]]} has no place in the '
                                  f'model (width {cnum}); the checkpoint is not of this architecture')
        ignored.append(name)  # optimizer slots, counters, the discriminator when not asked for
    missing = [name for name in table if name not in keys]
    if missing:
        raise CheckpointError(f'{prefix}: missing tensor {missing[0]}' +
                              (f' and {len(missing) - 1} more' if len(missing) > 1 else '') +
                              '; the checkpoint is incomplete or of another model')
    for name, variable in table.items():
        if tuple(shapes[keys[name]]) != tuple(variable.shape):
            raise CheckpointError(f'{prefix}: tensor {name} has shape {tuple(shapes[keys[name]])}, '
                                  f'the model needs {tuple(variable.shape)}; the checkpoint is not '
                                  f'of this architecture')
    for name, variable in table.items():
        variable.assign(reader.get_tensor(keys[name]).astype(np.float32))
    return generator, discriminator, LoadReport(prefix, sorted(table), ignored, cnum, d_cnum)


def _object_keys(shapes):
    """Authors' name -> key, for a checkpoint written through `training_checkpoint`.

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


def export_tf1(prefix, generator, discriminator=None):
    """Saves models in the authors' layout and names, readable by the original TF1 code."""
    table = generator_table(generator)
    if discriminator is not None:
        table.update(discriminator_table(discriminator))
    save_tf1_checkpoint(prefix, {name: v.numpy() for name, v in table.items()})


def main(argv=None):
    """`python -m inpaint.checkpoint SOURCE PREFIX`: re-saves any loadable checkpoint (e.g. a
    train.py log_dir, with its optimizer state) in the authors' TF1 layout, weights only.

    Returns 0, or 2 with a one-line message when SOURCE cannot be loaded.
    """
    import sys
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print('usage: python -m inpaint.checkpoint SOURCE PREFIX   (e.g. runs/x checkpoints/mine/snap-0)',
              file=sys.stderr)
        return 2
    try:
        generator, discriminator, report = load_models(argv[0])
    except CheckpointError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    export_tf1(argv[1], generator, discriminator)
    print(f'{report.prefix} -> {argv[1]} (generator width {report.generator_cnum}, discriminator '
          f'{report.discriminator_cnum})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
