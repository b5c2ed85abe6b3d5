"""The loader against TF1-format checkpoints written here with seeded random values."""
import filecmp
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import GOLDEN, GOLDEN_CHECKPOINT, SHARED_GOLDEN
from inpaint.checkpoint import (CheckpointError, export_tf1, load_models, resolve_prefix,
                                save_tf1_checkpoint, training_checkpoint)
from inpaint.discriminator import build_discriminator
from inpaint.generator import ATTENTION_IN, ATTENTION_OUT, HALLUCINATION, STAGE1, STAGE2_OUT
from inpaint.generator import build_generator


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
    save_tf1_checkpoint(os.path.join(folder, 'snap-0'), tensors)
    if state_file != 'checkpoint':
        os.rename(os.path.join(folder, 'checkpoint'), os.path.join(folder, state_file))
    return tensors


@pytest.fixture(scope='module')
def full_release(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('release'))
    return folder, random_release(folder)


def test_every_weight_arrives_where_it_should(full_release):
    folder, tensors = full_release
    generator, discriminator, report = load_models(folder)
    assert (report.generator_cnum, report.discriminator_cnum) == (48, 64)
    # Keras paths of the generator are the authors' names; check each against the written value.
    for weight in generator.weights:
        np.testing.assert_array_equal(weight.numpy(), tensors[weight.path], err_msg=weight.path)
    for conv in discriminator.convs:
        scope = f'discriminator/sn_patch_gan/{conv.name}'
        np.testing.assert_array_equal(conv.kernel.numpy(), tensors[f'{scope}/kernel'])
        np.testing.assert_array_equal(conv.bias.numpy(), tensors[f'{scope}/bias'])
        np.testing.assert_array_equal(conv.u.numpy(), tensors[f'{scope}/kernel_sn/u'])
    assert len(report.loaded) == 84 + 18
    assert sorted(report.ignored) == sorted(['beta1_power', 'beta2_power', 'global_step', 'lr',
                                             'inpaint_net/conv1/kernel/Adam',
                                             'inpaint_net/conv1/kernel/Adam_1'])
    # Nested upsampling conv, checked explicitly.
    up = generator.conv_layers()['allconv13_upsample'].conv
    np.testing.assert_array_equal(
        up.kernel.numpy(), tensors['inpaint_net/allconv13_upsample/allconv13_upsample_conv/kernel'])


def test_checkpoint_txt_and_prefix_and_absolute_state_path(tmp_path):
    tensors = random_release(str(tmp_path), cnum=8, d_cnum=8, state_file='checkpoint.txt')
    generator, _, _ = load_models(str(tmp_path))
    np.testing.assert_array_equal(generator.weights[0].numpy(), tensors['inpaint_net/conv1/kernel'])
    assert load_models(str(tmp_path / 'snap-0'))[2].prefix == str(tmp_path / 'snap-0')
    (tmp_path / 'checkpoint.txt').write_text('model_checkpoint_path: "/home/author/model_logs/snap-0"\n')
    assert resolve_prefix(str(tmp_path)) == str(tmp_path / 'snap-0')


@pytest.mark.parametrize('name', ['inpaint_net/conv13_upsample/conv13_upsample_conv/kernel',
                                  'discriminator/sn_patch_gan/conv3/kernel_sn/u'])
def test_missing_tensor_is_named(tmp_path, name):
    random_release(str(tmp_path), cnum=8, d_cnum=8, drop=name)
    with pytest.raises(CheckpointError, match=name):
        load_models(str(tmp_path))


def test_misshaped_tensor_is_named(tmp_path):
    name = 'inpaint_net/xconv5/kernel'
    random_release(str(tmp_path), cnum=8, d_cnum=8, reshape=name)
    with pytest.raises(CheckpointError, match=f'{name} has shape'):
        load_models(str(tmp_path))


def test_unused_tensor_under_the_model_scope_is_an_error(tmp_path):
    random_release(str(tmp_path), cnum=8, d_cnum=8,
                   extra={'inpaint_net/conv18/kernel': np.ones((3, 3, 3, 3), np.float32)})
    with pytest.raises(CheckpointError, match='inpaint_net/conv18/kernel'):
        load_models(str(tmp_path))


def test_generator_only_checkpoint_loads_without_discriminator(tmp_path):
    names = [n for n in authors_names(8, 8) if n.startswith('discriminator/')]
    rng = np.random.default_rng(0)
    tensors = {n: rng.normal(size=s).astype(np.float32) for n, s in authors_names(8, 8).items()
               if n not in names}
    save_tf1_checkpoint(str(tmp_path / 'snap-0'), tensors)
    generator, discriminator, report = load_models(str(tmp_path))
    assert discriminator is None and report.discriminator_cnum is None


@pytest.mark.parametrize('setup,match', [
    ('missing', 'no such checkpoint'),
    ('empty', 'no checkpoint here'),
    ('damaged', 'cannot read'),
    ('other_model', 'not a DeepFill v2 checkpoint'),
])
def test_unloadable_checkpoints(tmp_path, setup, match):
    path = str(tmp_path / 'ckpt')
    if setup != 'missing':
        os.makedirs(path)
    if setup == 'damaged':
        random_release(path, cnum=8, d_cnum=8)
        with open(os.path.join(path, 'snap-0.index'), 'r+b') as handle:
            handle.truncate(100)
    if setup == 'other_model':
        save_tf1_checkpoint(os.path.join(path, 'snap-0'), {'resnet/conv1/kernel': np.ones(3, np.float32)})
    with pytest.raises(CheckpointError, match=match):
        load_models(path)


def test_export_round_trip(tmp_path):
    generator, discriminator = build_generator(8), build_discriminator(8)
    export_tf1(str(tmp_path / 'snap-0'), generator, discriminator)
    loaded, loaded_d, _ = load_models(str(tmp_path))
    for a, b in zip(generator.weights + discriminator.weights, loaded.weights + loaded_d.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_object_based_training_checkpoint(tmp_path):
    generator, discriminator = build_generator(8), build_discriminator(8)
    for w in generator.weights[:4]:
        w.assign(tf.random.stateless_normal(w.shape, [3, 4]))
    optimizer = keras.optimizers.Adam()
    optimizer.build(generator.trainable_variables + discriminator.trainable_variables)
    training_checkpoint(generator, discriminator, optimizer=optimizer,
                        step=tf.Variable(5, dtype=tf.int64)).save(str(tmp_path / 'ckpt'))
    loaded, loaded_d, report = load_models(str(tmp_path))
    assert report.generator_cnum == 8 and report.discriminator_cnum == 8
    assert len(report.loaded) == 84 + 18 and any(n.startswith('optimizer/') for n in report.ignored)
    for a, b in zip(generator.weights + discriminator.weights, loaded.weights + loaded_d.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_golden_widths_are_inferred(golden_models):
    _, _, report = golden_models
    assert (report.generator_cnum, report.discriminator_cnum) == (8, 8)


def test_discriminator_matches_golden(golden_models):
    _, discriminator, _ = load_models(GOLDEN_CHECKPOINT)  # fresh: `u` changes on every call
    data = np.load(os.path.join(GOLDEN, 'discriminator.npz'))
    out = discriminator(tf.constant(data['x'])).numpy()
    # Golden README: relative difference under 1e-4.
    assert np.abs(out - data['out']).max() < 1e-4 * np.abs(data['out']).max()
    for conv in discriminator.convs:
        want = data[f'u_after__discriminator__sn_patch_gan__{conv.name}__kernel_sn__u']
        assert np.abs(conv.u.numpy() - want).max() < 1e-4 * np.abs(want).max(), conv.name


def test_fixture_copy_equals_shared_golden():
    if not os.path.isdir(SHARED_GOLDEN):
        pytest.skip(f'{SHARED_GOLDEN} is absent: cannot compare the tests/data copy with it')
    for name in ('checkpoint', 'snap-0.index', 'snap-0.data-00000-of-00001'):
        assert filecmp.cmp(os.path.join(GOLDEN_CHECKPOINT, name),
                           os.path.join(SHARED_GOLDEN, 'checkpoint_dir', name), shallow=False)
    for case in ('rocket256', 'motorcycle184x264', 'coffee400x600'):
        for name in ('input.png', 'mask.png', 'output.png'):
            assert filecmp.cmp(os.path.join(GOLDEN, case, name),
                               os.path.join(SHARED_GOLDEN, case, name), shallow=False)
        mine = np.load(os.path.join(GOLDEN, case, 'intermediates.npz'))
        theirs = np.load(os.path.join(SHARED_GOLDEN, case, 'intermediates.npz'))
        for key in theirs:
            np.testing.assert_array_equal(mine[key], theirs[key])


def test_export_command(tmp_path, capsys):
    from inpaint.checkpoint import main
    assert main([GOLDEN_CHECKPOINT, str(tmp_path / 'out' / 'snap-0')]) == 0
    generator, discriminator, _ = load_models(str(tmp_path / 'out'))
    reader = tf.train.load_checkpoint(os.path.join(GOLDEN_CHECKPOINT, 'snap-0'))
    np.testing.assert_array_equal(generator.weights[5].numpy(), reader.get_tensor(generator.weights[5].path))
    assert main([str(tmp_path / 'nothing'), str(tmp_path / 'x')]) == 2
    assert 'nothing' in capsys.readouterr().err
