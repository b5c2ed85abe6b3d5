"""The loader and the converter (inpaint/checkpoint.py).

Backend-neutral: the weights folder (this project's format) and train.py's run files, written
here from models with seeded random values (never zeros: they hide swaps and transposes), and the
conversion command. TensorFlow only (`tf_only`): the authors' TF1 format, written here with
`inpaint.tf1_checkpoint.save_tf1_checkpoint`, and conversions to and from it.
"""
import filecmp
import json
import os

import numpy as np
import pytest

from conftest import (CASES, GOLDEN, GOLDEN_CHECKPOINT, GOLDEN_WEIGHTS, GUIDED_GOLDEN,
                      assert_discriminator_matches_golden, folder_state, load_golden_models,
                      shared_path, to_numpy)
from inpaint import training_state
from inpaint.checkpoint import (CheckpointError, discriminator_table, export_tf1, generator_table,
                                load_models, model_tensors, resolve_prefix, save_weights_folder)
from inpaint.commands.convert import main
from inpaint.discriminator import build_discriminator
from inpaint.generator import ATTENTION_IN, ATTENTION_OUT, HALLUCINATION, STAGE1, STAGE2_OUT
from inpaint.generator import build_generator

HERE = os.path.dirname(os.path.abspath(__file__))
# The training goldens' neutral weights; their TF1 checkpoints are in ../shared only.
TRAIN_WEIGHTS = os.path.join(HERE, 'data', 'golden_train_small', 'weights')
GUIDED_TRAIN_WEIGHTS = os.path.join(HERE, 'data', 'golden_guided_train_small', 'weights')


def authors_names(cnum=48, d_cnum=64):
    """Name -> shape of the authors' tensors, derived from REFERENCE.md's layer list."""
    names = {}
    previous = 5
    def add(scope, k, c_in, c_out):
        names[f'{scope}/kernel'] = (k, k, c_in, c_out)
        names[f'{scope}/bias'] = (c_out,)
    def width(m):
        return {'half': cnum // 2, 'rgb': 3}[m] if isinstance(m, str) else m * cnum
    def chain(specs, c_in):
        for name, kind, m, k, *_ in specs:
            scope = f'inpaint_net/{name}/{name}_conv' if kind == 'up' else f'inpaint_net/{name}'
            add(scope, k, c_in, width(m))
            c_in = width(m) // 2 if width(m) != 3 else 3
        return c_in
    chain(STAGE1, previous)
    hallu = chain(HALLUCINATION, 3)
    att = chain(ATTENTION_OUT, chain(ATTENTION_IN, 3))
    chain(STAGE2_OUT, hallu + att)
    c_in = 4
    for i, m in enumerate((1, 2, 4, 4, 4, 4)):
        scope = f'discriminator/sn_patch_gan/conv{i + 1}'
        add(scope, 5, c_in, m * d_cnum)
        names[f'{scope}/kernel_sn/u'] = (1, m * d_cnum)
        c_in = m * d_cnum
    return names


def random_models(cnum=8, d_cnum=8, channels=4, seed=0):
    """A generator and a discriminator whose every weight (`u` included) is seeded random."""
    generator, discriminator = build_generator(cnum), build_discriminator(d_cnum, channels)
    rng = np.random.default_rng(seed)
    for weight in generator.weights + discriminator.weights:
        weight.assign(rng.normal(size=tuple(weight.shape)).astype(np.float32))
    return generator, discriminator


def tensors_of(generator, discriminator=None):
    """{authors' name: NumPy array} read back through the tables (not through `model_tensors`)."""
    table = dict(generator_table(generator))
    if discriminator is not None:
        table.update(discriminator_table(discriminator))
    return {name: to_numpy(variable) for name, variable in table.items()}


def assert_tensors_equal(actual, expected):
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


@pytest.fixture(scope='module')
def random_folder(tmp_path_factory):
    """A weights folder of seeded random models, and their tensors."""
    folder = str(tmp_path_factory.mktemp('weights'))
    generator, discriminator = random_models()
    save_weights_folder(folder, generator, discriminator)
    return folder, tensors_of(generator, discriminator)


# --- the weights folder (backend-neutral) ----------------------------------------------------

def test_weights_folder_round_trip(random_folder):
    folder, tensors = random_folder
    generator, discriminator, report = load_models(folder)
    assert (report.generator_cnum, report.discriminator_cnum, report.format) == (8, 8, 'weights')
    assert report.prefix == folder and len(report.loaded) == 84 + 18 and report.ignored == []
    assert int(discriminator.convs[0].kernel.shape[2]) == 4
    assert_tensors_equal(tensors_of(generator, discriminator), tensors)
    with open(os.path.join(folder, 'deepfill.json')) as handle:
        manifest = json.load(handle)
    assert manifest['cnum_generator'] == 8 and manifest['discriminator_channels'] == 4
    names = set(os.listdir(folder))
    assert {'deepfill.json', 'generator.weights.h5', 'discriminator.weights.json'} <= names
    assert all(os.path.getsize(os.path.join(folder, name)) < 20e6 for name in names)


def test_models_are_built_at_the_dtype_asked(random_folder):
    """`load_models(..., dtype=)` builds both networks with the policy (bfloat16 inference loads
    straight into it); the weights, float32, are the file's."""
    folder, tensors = random_folder
    generator, discriminator, _ = load_models(folder, dtype='mixed_bfloat16')
    assert generator.dtype_policy.name == discriminator.dtype_policy.name == 'mixed_bfloat16'
    assert generator.stage1[0].dtype_policy.name == discriminator.convs[0].dtype_policy.name
    assert generator.contextual_attention.dtype_policy.name == 'float32'
    assert_tensors_equal(tensors_of(generator, discriminator), tensors)


def test_weights_folder_without_discriminator(random_folder, tmp_path):
    folder, tensors = random_folder
    generator, discriminator, report = load_models(folder, with_discriminator=False)
    assert discriminator is None and len(report.loaded) == 84
    # Saving again without a discriminator removes the earlier one.
    save_weights_folder(str(tmp_path), *random_models())
    save_weights_folder(str(tmp_path), generator, overwrite=True)
    assert not [name for name in os.listdir(tmp_path) if name.startswith('discriminator')]
    loaded, discriminator, report = load_models(str(tmp_path))
    assert discriminator is None and report.discriminator_cnum is None
    assert_tensors_equal(tensors_of(loaded),
                         {n: v for n, v in tensors.items() if n.startswith('inpaint_net/')})


@pytest.mark.parametrize('damage, match', [
    ('no_manifest', 'no checkpoint here'),
    ('garbage_manifest', 'deepfill.json: unreadable'),
    ('other_format', 'not a deepfill-tf2 weights manifest'),
    ('missing_generator', 'generator.weights.h5: missing'),
    ('truncated_generator', 'generator.weights.h5: cannot load'),
    ('truncated_shard', 'discriminator.weights.json: cannot load'),
])
def test_damaged_weights_folder(random_folder, tmp_path, damage, match):
    folder = str(tmp_path / 'weights')
    os.makedirs(folder)
    for name, data in folder_state(random_folder[0]).items():
        with open(os.path.join(folder, name), 'wb') as handle:
            handle.write(data)
    manifest = os.path.join(folder, 'deepfill.json')
    if damage == 'no_manifest':
        os.remove(manifest)
    elif damage == 'garbage_manifest':
        with open(manifest, 'w') as handle:
            handle.write('{"format": ')
    elif damage == 'other_format':
        with open(manifest, 'w') as handle:
            json.dump({'format': 'something else', 'cnum_generator': 8}, handle)
    elif damage == 'missing_generator':
        os.remove(os.path.join(folder, 'generator.weights.h5'))
    else:
        name = 'generator.weights.h5' if damage == 'truncated_generator' else [
            n for n in os.listdir(folder) if n.startswith('discriminator_')][0]
        path = os.path.join(folder, name)
        with open(path, 'r+b') as handle:
            handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(CheckpointError, match=match) as info:
        load_models(folder)
    assert '\n' not in str(info.value)


# --- train.py runs (backend-neutral) ---------------------------------------------------------

def test_run_folder_loads_its_newest_checkpoint(random_folder, tmp_path):
    _, tensors = random_folder
    older = {name: value + 1.0 for name, value in tensors.items()}
    training_state.write(training_state.path_for(tmp_path, 1), 1, older)
    newest = training_state.path_for(tmp_path, 3)
    training_state.write(newest, 3, tensors, [np.arange(3, dtype=np.float32)], ['adam/iterations'])
    generator, discriminator, report = load_models(str(tmp_path))
    assert report.format == 'run' and report.prefix == newest
    assert_tensors_equal(tensors_of(generator, discriminator), tensors)
    generator, discriminator, report = load_models(training_state.path_for(tmp_path, 1))
    assert report.prefix == training_state.path_for(tmp_path, 1)
    assert_tensors_equal(tensors_of(generator, discriminator), older)


def test_damaged_run_file(random_folder, tmp_path):
    path = training_state.path_for(tmp_path, 2)
    training_state.write(path, 2, random_folder[1])
    with open(path, 'r+b') as handle:
        handle.truncate(1000)
    with pytest.raises(CheckpointError, match='ckpt-2.h5'):
        load_models(path)
    with pytest.raises(CheckpointError, match=r'every checkpoint is damaged \(ckpt-2.h5\)'):
        load_models(str(tmp_path))


@pytest.mark.parametrize('setup, match', [
    ('missing', 'no such checkpoint'),
    ('empty', 'no checkpoint here'),
    pytest.param('damaged_tf1', 'cannot read', marks=pytest.mark.tf_only),
    pytest.param('other_model', 'not a DeepFill v2 checkpoint', marks=pytest.mark.tf_only),
])
def test_unloadable_checkpoints(tmp_path, setup, match):
    path = str(tmp_path / 'ckpt')
    if setup != 'missing':
        os.makedirs(path)
    if setup == 'damaged_tf1':
        random_release(path, cnum=8, d_cnum=8)
        with open(os.path.join(path, 'snap-0.index'), 'r+b') as handle:
            handle.truncate(100)
    if setup == 'other_model':
        save_tf1(os.path.join(path, 'snap-0'), {'resnet/conv1/kernel': np.ones(3, np.float32)})
    with pytest.raises(CheckpointError, match=match):
        load_models(path)


# --- the conversion command (backend-neutral) ------------------------------------------------

def test_convert_a_run_to_a_weights_folder(random_folder, tmp_path, capsys):
    _, tensors = random_folder
    run = tmp_path / 'run'
    run.mkdir()
    training_state.write(training_state.path_for(run, 4), 4, tensors)
    assert main([str(run), str(tmp_path / 'out')]) == 0
    assert 'ckpt-4.h5 -> ' in capsys.readouterr().out
    generator, discriminator, report = load_models(str(tmp_path / 'out'))
    assert report.format == 'weights'
    assert_tensors_equal(tensors_of(generator, discriminator), tensors)


@pytest.mark.parametrize('inside', ['export', '.', 'sub/deeper'])
def test_convert_refuses_a_destination_inside_a_run(random_folder, tmp_path, capsys, inside):
    run = tmp_path / 'run'
    run.mkdir()
    training_state.write(training_state.path_for(run, 4), 4, random_folder[1])
    (run / 'config.yml').write_text('batch_size: 2\n')
    (run / 'events.out.tfevents.1.host').write_bytes(b'\x00' * 16)
    before = folder_state(run)
    assert main([random_folder[0], str(run / inside)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and 'inside the training run' in err
    assert folder_state(run) == before  # nothing written, nothing removed


def test_convert_never_replaces_a_folder_holding_other_files(random_folder, tmp_path, capsys):
    """It wrote into any folder and removed every `discriminator*` file there first."""
    mine = tmp_path / 'Documents'
    mine.mkdir()
    (mine / 'discriminator_notes.txt').write_text('mine')
    (mine / 'generator.weights.h5').write_bytes(b'my own file')
    before = folder_state(mine)
    for flags in ([], ['--overwrite']):
        assert main([random_folder[0], str(mine), *flags]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and 'holds other files; it is never replaced' in err
    assert folder_state(mine) == before


def test_convert_replaces_an_earlier_conversion_only_with_overwrite(random_folder, tmp_path, capsys):
    out = str(tmp_path / 'weights')
    assert main([random_folder[0], out]) == 0
    before = folder_state(out)
    assert main([random_folder[0], out]) == 2
    assert 'holds earlier weights; pass --overwrite' in capsys.readouterr().err
    assert folder_state(out) == before
    assert main([random_folder[0], out, '--overwrite']) == 0
    assert sorted(os.listdir(tmp_path)) == ['weights']  # no temporary folder left
    assert_tensors_equal(tensors_of(*load_models(out)[:2]), random_folder[1])


@pytest.mark.tf_only
def test_convert_to_tf1_never_replaces_another_checkpoints_state_file(random_folder, tmp_path, capsys):
    release = tmp_path / 'release'
    random_release(str(release), cnum=8, d_cnum=8)  # snap-0 and its `checkpoint` state file
    before = folder_state(release)
    for flags in ([], ['--overwrite']):
        assert main([random_folder[0], str(release / 'mine'), '--format', 'tf1', *flags]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and 'the state file of another checkpoint' in err
    assert folder_state(release) == before
    out = str(tmp_path / 'tf1' / 'snap-0')
    assert main([random_folder[0], out, '--format', 'tf1']) == 0
    assert main([random_folder[0], out, '--format', 'tf1']) == 2
    assert 'exists (an earlier export); pass --overwrite' in capsys.readouterr().err
    assert main([random_folder[0], out, '--format', 'tf1', '--overwrite']) == 0
    assert sorted(os.listdir(tmp_path / 'tf1')) == ['checkpoint', 'snap-0.data-00000-of-00001',
                                                   'snap-0.index']


def test_convert_refuses_its_source_and_a_missing_one(random_folder, tmp_path, capsys):
    folder = random_folder[0]
    before = folder_state(folder)
    assert main([folder, folder]) == 2
    assert 'is the source itself' in capsys.readouterr().err
    assert folder_state(folder) == before
    assert main([str(tmp_path / 'nothing'), str(tmp_path / 'x')]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and 'nothing' in err and not os.path.exists(tmp_path / 'x')


# --- golden fixtures -------------------------------------------------------------------------

def test_golden_widths_are_inferred(golden_models):
    _, _, report = golden_models
    assert (report.generator_cnum, report.discriminator_cnum) == (8, 8)


def test_discriminator_matches_golden():
    _, discriminator, _ = load_golden_models()  # fresh: `u` changes on every call
    assert_discriminator_matches_golden(discriminator, os.path.join(GOLDEN, 'discriminator.npz'))


def test_fixture_copy_equals_shared_golden():
    """What tests/data copies of ../shared/golden/small equals it: the checkpoint, the small
    goldens and the pictures of the cases copied (the intermediates and coffee400x600 are read
    from ../shared only)."""
    shared = shared_path('golden', 'small')
    names = ['manifest.json', 'contextual_attention.npz', 'discriminator.npz'] + [
        os.path.join('checkpoint_dir', name) for name in ('checkpoint', 'snap-0.index',
                                                          'snap-0.data-00000-of-00001')]
    copied = [case for case in CASES if os.path.isdir(os.path.join(GOLDEN, case))]
    names += [os.path.join(case, name) for case in copied for name in ('input.png', 'mask.png', 'output.png')]
    for name in names:
        assert filecmp.cmp(os.path.join(GOLDEN, name), os.path.join(shared, name), shallow=False), name
    assert filecmp.cmp(os.path.join(HERE, 'data', 'mask_stats_256.json'),
                       os.path.join(shared, 'mask_stats_256.json'), shallow=False)


# --- the authors' TF1 format (TensorFlow only) -----------------------------------------------

def save_tf1(prefix, tensors):
    from inpaint.tf1_checkpoint import save_tf1_checkpoint
    save_tf1_checkpoint(prefix, tensors)


def random_release(folder, cnum=48, d_cnum=64, drop=None, reshape=None, extra=None,
                   state_file='checkpoint'):
    """Writes a TF1 checkpoint like a training snapshot of the release, with seeded values."""
    rng = np.random.default_rng(123)
    tensors = {n: rng.normal(size=s).astype(np.float32) for n, s in authors_names(cnum, d_cnum).items()}
    tensors.update({'inpaint_net/conv1/kernel/Adam': np.ones((5, 5, 5, cnum), np.float32),
                    'inpaint_net/conv1/kernel/Adam_1': np.ones((5, 5, 5, cnum), np.float32),
                    'beta1_power': np.float32(0.5), 'beta2_power': np.float32(0.9),
                    'lr': np.float32(1e-4), 'global_step': np.int64(7)})
    if drop:
        tensors.pop(drop)
    if reshape:
        tensors[reshape] = np.zeros(tensors[reshape].shape[:-1] + (3,), np.float32)
    tensors.update(extra or {})
    save_tf1(os.path.join(folder, 'snap-0'), tensors)
    if state_file != 'checkpoint':
        os.rename(os.path.join(folder, 'checkpoint'), os.path.join(folder, state_file))
    return tensors


def model_part(tensors):
    """The tensors under the model scopes (what a load must reproduce)."""
    return {name: value for name, value in tensors.items()
            if name.startswith(('inpaint_net/', 'discriminator/'))
            and not name.endswith(('/Adam', '/Adam_1'))}


@pytest.fixture(scope='module')
def full_release(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('release'))
    return folder, random_release(folder)


@pytest.mark.tf_only
def test_every_weight_arrives_where_it_should(full_release):
    folder, tensors = full_release
    generator, discriminator, report = load_models(folder)
    assert (report.generator_cnum, report.discriminator_cnum) == (48, 64)
    # Keras paths of the generator are the authors' names; check each against the written value.
    for weight in generator.weights:
        np.testing.assert_array_equal(to_numpy(weight), tensors[weight.path], err_msg=weight.path)
    for conv in discriminator.convs:
        scope = f'discriminator/sn_patch_gan/{conv.name}'
        np.testing.assert_array_equal(to_numpy(conv.kernel), tensors[f'{scope}/kernel'])
        np.testing.assert_array_equal(to_numpy(conv.bias), tensors[f'{scope}/bias'])
        np.testing.assert_array_equal(to_numpy(conv.u), tensors[f'{scope}/kernel_sn/u'])
    assert len(report.loaded) == 84 + 18
    assert sorted(report.ignored) == sorted(['beta1_power', 'beta2_power', 'global_step', 'lr',
                                             'inpaint_net/conv1/kernel/Adam',
                                             'inpaint_net/conv1/kernel/Adam_1'])
    # Nested upsampling conv, checked explicitly.
    up = generator.conv_layers()['allconv13_upsample'].conv
    np.testing.assert_array_equal(
        to_numpy(up.kernel), tensors['inpaint_net/allconv13_upsample/allconv13_upsample_conv/kernel'])


@pytest.mark.tf_only
def test_checkpoint_txt_and_prefix_and_absolute_state_path(tmp_path):
    tensors = random_release(str(tmp_path), cnum=8, d_cnum=8, state_file='checkpoint.txt')
    generator, _, _ = load_models(str(tmp_path))
    np.testing.assert_array_equal(to_numpy(generator.weights[0]), tensors['inpaint_net/conv1/kernel'])
    assert load_models(str(tmp_path / 'snap-0'))[2].prefix == str(tmp_path / 'snap-0')
    (tmp_path / 'checkpoint.txt').write_text('model_checkpoint_path: "/home/author/model_logs/snap-0"\n')
    assert resolve_prefix(str(tmp_path)) == str(tmp_path / 'snap-0')


@pytest.mark.tf_only
@pytest.mark.parametrize('name', ['inpaint_net/conv13_upsample/conv13_upsample_conv/kernel',
                                  'discriminator/sn_patch_gan/conv3/kernel_sn/u'])
def test_missing_tensor_is_named(tmp_path, name):
    random_release(str(tmp_path), cnum=8, d_cnum=8, drop=name)
    with pytest.raises(CheckpointError, match=name):
        load_models(str(tmp_path))


@pytest.mark.tf_only
def test_misshaped_tensor_is_named(tmp_path):
    name = 'inpaint_net/xconv5/kernel'
    random_release(str(tmp_path), cnum=8, d_cnum=8, reshape=name)
    with pytest.raises(CheckpointError, match=f'{name} has shape'):
        load_models(str(tmp_path))


@pytest.mark.tf_only
def test_unused_tensor_under_the_model_scope_is_an_error(tmp_path):
    random_release(str(tmp_path), cnum=8, d_cnum=8,
                   extra={'inpaint_net/conv18/kernel': np.ones((3, 3, 3, 3), np.float32)})
    with pytest.raises(CheckpointError, match='inpaint_net/conv18/kernel'):
        load_models(str(tmp_path))


@pytest.mark.tf_only
def test_generator_only_checkpoint_loads_without_discriminator(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {n: rng.normal(size=s).astype(np.float32) for n, s in authors_names(8, 8).items()
               if not n.startswith('discriminator/')}
    save_tf1(str(tmp_path / 'snap-0'), tensors)
    generator, discriminator, report = load_models(str(tmp_path))
    assert discriminator is None and report.discriminator_cnum is None
    assert_tensors_equal(tensors_of(generator), tensors)


@pytest.mark.tf_only
def test_checkpoint_of_an_earlier_version(tmp_path):
    """Runs of earlier versions of this project: object-based `tf.train.Checkpoint`s whose
    generator and discriminator attributes are the authors' names, plus optimizer and step."""
    import tensorflow as tf
    generator, discriminator = random_models()
    tensors = model_tensors(generator, discriminator)
    node = lambda scope: tf.train.Checkpoint(**{
        name: tf.Variable(value) for name, value in tensors.items() if name.startswith(scope)})
    tf.train.Checkpoint(generator=node('inpaint_net/'), discriminator=node('discriminator/'),
                        optimizer=tf.train.Checkpoint(iterations=tf.Variable(4, dtype=tf.int64)),
                        step=tf.Variable(5, dtype=tf.int64)).save(str(tmp_path / 'ckpt'))
    loaded, loaded_d, report = load_models(str(tmp_path))
    assert report.generator_cnum == 8 and report.discriminator_cnum == 8
    assert len(report.loaded) == 84 + 18 and any(n.startswith('optimizer/') for n in report.ignored)
    assert_tensors_equal(tensors_of(loaded, loaded_d), tensors)


@pytest.mark.tf_only
def test_export_tf1_round_trip(tmp_path):
    generator, discriminator = random_models()
    export_tf1(str(tmp_path / 'snap-0'), generator, discriminator)
    loaded, loaded_d, _ = load_models(str(tmp_path))
    assert_tensors_equal(tensors_of(loaded, loaded_d), tensors_of(generator, discriminator))


@pytest.mark.tf_only
def test_convert_tf1_to_weights_and_back_exactly(full_release, tmp_path):
    """TF1 -> weights folder -> TF1 with the command; every tensor equal at every stage."""
    release, tensors = full_release
    expected = model_part(tensors)
    assert main([release, str(tmp_path / 'weights')]) == 0
    generator, discriminator, report = load_models(str(tmp_path / 'weights'))
    assert report.format == 'weights' and (report.generator_cnum, report.discriminator_cnum) == (48, 64)
    assert_tensors_equal(tensors_of(generator, discriminator), expected)
    assert main([str(tmp_path / 'weights'), str(tmp_path / 'tf1' / 'snap-0'), '--format', 'tf1']) == 0
    generator, discriminator, report = load_models(str(tmp_path / 'tf1'))
    assert report.format == 'tf1' and report.ignored == []
    assert_tensors_equal(tensors_of(generator, discriminator), expected)


@pytest.mark.tf_only
@pytest.mark.parametrize('tf1, weights', [
    (GOLDEN_CHECKPOINT, GOLDEN_WEIGHTS),
    (('golden', 'train_small', 'checkpoint_dir'), TRAIN_WEIGHTS),  # under ../shared
    (os.path.join(GUIDED_GOLDEN, 'checkpoint_dir'), os.path.join(GUIDED_GOLDEN, 'weights')),
    (('golden', 'guided_small', 'train', 'checkpoint_dir'), GUIDED_TRAIN_WEIGHTS),
])
def test_weights_fixtures_equal_their_tf1_originals(tf1, weights):
    """tests/data's backend-neutral copies (used where TensorFlow is absent) hold the same values.
    A TF1 checkpoint given as path parts is in ../shared (skipped without it)."""
    if isinstance(tf1, tuple):
        tf1 = shared_path(*tf1)
    if not os.path.isdir(weights):
        pytest.skip(f'{weights} is absent; make it with python -m inpaint.commands.convert {tf1} {weights}')
    from inpaint.tf1_checkpoint import read_tensors
    shapes, load = read_tensors(resolve_prefix(tf1))
    generator, discriminator, _ = load_models(weights)
    assert_tensors_equal(tensors_of(generator, discriminator),
                         {name: load(name) for name in model_part(shapes)})
