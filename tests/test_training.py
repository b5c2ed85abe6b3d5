"""Tests for inpaint/training.py and train.py on tiny data (32x32 images, widths 8, batch 2).

Tolerances:
- Step losses vs a direct eager forward: the step runs as a grappler-optimized graph, so float32
  sums may be reordered; `rtol=1e-5, atol=1e-6` is ~10x the observed difference on values ~1.
- Fine-tuning: the same weights and the same eager ops give bit-identical outputs (tolerance 0).
- Two replicas vs one: see `test_two_replicas_match_one_device`.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

import train as train_cli
from inpaint import losses
from inpaint.checkpoint import CheckpointError, discriminator_table, generator_table, load_models
from inpaint.config import DEFAULT_CONFIG, load_config
from inpaint.inference import Inpainter
from inpaint.training import NonFiniteLossError, Trainer, static_view_mask

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GOLDEN_CHECKPOINT = os.path.join(HERE, 'data', 'golden_small', 'checkpoint_dir')
SHARED = os.path.join(REPO, '..', 'shared')
SHARED_GOLDEN_CHECKPOINT = os.path.join(SHARED, 'golden', 'small', 'checkpoint_dir')
IMAGENET = os.path.join(SHARED, 'data', 'imagenet_sample')
RTOL, ATOL = 1e-5, 1e-6
SIZE = 32


def write_images(folder, count, seed=0, height=40, width=48):
    """Writes structured PNGs (gradients, a disc, noise) and returns their paths."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    paths = []
    for i in range(count):
        image = np.stack([(xx * 5 + 20 * i) % 256, (yy * 6) % 256, ((xx + yy) * 3) % 256], -1)
        image = np.where(((yy - height / 2) ** 2 + (xx - width / 3) ** 2 < 60)[..., None], 255 - image, image)
        image = np.clip(image + rng.integers(-10, 11, image.shape), 0, 255).astype(np.uint8)
        paths.append(os.path.join(folder, f'{i}.png'))
        cv2.imwrite(paths[-1], image)
    return paths


def tiny_overrides(folder, **changes):
    """`--set` strings of a tiny run whose images and logs live in `folder`."""
    paths = write_images(os.path.join(folder, 'images'), 6)
    with open(os.path.join(folder, 'train.flist'), 'w') as handle:
        handle.write('\n'.join(paths))
    with open(os.path.join(folder, 'val.flist'), 'w') as handle:
        handle.write('\n'.join(paths[:3]))
    values = {
        'data_flist.tiny': f'[{folder}/train.flist, {folder}/val.flist]', 'dataset': 'tiny',
        'img_shapes': f'[{SIZE},{SIZE},3]', 'height': 16, 'width': 16, 'max_delta_height': 4,
        'max_delta_width': 4, 'batch_size': 2, 'cnum_generator': 8, 'cnum_discriminator': 8,
        'log_dir': os.path.join(folder, 'log'), 'random_seed': True, 'random_crop': False,
        'log_steps': 1, 'val_psteps': 2, 'val': True, 'static_view_size': 2, 'train_spe': 1,
        'num_parallel_calls': 1, 'shuffle_buffer': 8,
        # Non-default loss weights, so that a weight applied wrongly shows in the parity test.
        'gan_loss_alpha': 0.5, 'l1_loss_alpha': 1.5}
    values.update(changes)
    return [f'{key}={value}' for key, value in values.items()]


def tiny_config(folder, **changes):
    return load_config(DEFAULT_CONFIG, tiny_overrides(os.fspath(folder), **changes))


def fixed_inputs(batch=2, seed=0):
    """A raw batch (0..255 BGR float32) and a 10x10 box mask (1, H, W, 1).

    The hole is small and off-centre on purpose: contextual attention matches 3x3 patches on a
    4x4 grid here, and a central hole would touch every patch, leave no patch to attend to and
    so give the attention branch (pmconv*) no gradient at all.
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (batch, SIZE, SIZE, 3)).astype(np.float32)
    mask = np.zeros((1, SIZE, SIZE, 1), np.float32)
    mask[:, 4:14, 4:14] = 1.0
    return images, mask


def values(variables):
    return [v.numpy().copy() for v in variables]


def u_values(trainer):
    return [conv.u.numpy().copy() for conv in trainer.discriminator.convs]


def restore_u(trainer, saved):
    for conv, value in zip(trainer.discriminator.convs, saved):
        conv.u.assign(value)


def summaries(log_dir):
    """(step, Summary.Value) of every record in the events files of log_dir."""
    found = []
    for path in sorted(glob.glob(os.path.join(log_dir, 'events.out.tfevents.*'))):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            found.extend((event.step, value) for value in event.summary.value)
    return found


def moved(before, after):
    """Whether each variable changed."""
    return [not np.array_equal(a, b) for a, b in zip(before, after)]


@pytest.fixture(scope='module')
def trainer(tmp_path_factory):
    return Trainer(tiny_config(tmp_path_factory.mktemp('steps')))


# --- steps -----------------------------------------------------------------------------------

def test_every_variable_gets_a_gradient(trainer):
    images, mask = fixed_inputs()
    x = tf.constant(images / 127.5 - 1.0)
    generator, discriminator = trainer.generator, trainer.discriminator
    complete = tf.stop_gradient(trainer.inpaint(x, mask)['complete'])
    with tf.GradientTape() as tape:
        d_loss = trainer.discriminator_losses(x, complete, mask)['d_loss']
    d_grads = tape.gradient(d_loss, discriminator.trainable_variables)
    with tf.GradientTape() as tape:
        g_loss = trainer.generator_losses(x, mask)['g_loss']
    g_grads = tape.gradient(g_loss, generator.trainable_variables)
    assert len(g_grads) == 84 and len(d_grads) == 12  # 42 and 6 convs with kernel and bias
    for variable, grad in zip(discriminator.trainable_variables + generator.trainable_variables,
                              d_grads + g_grads):
        assert grad is not None, variable.path
        assert float(tf.reduce_max(tf.abs(grad))) > 0, variable.path


def test_steps_update_only_their_network_and_trace_once(trainer):
    images, mask = fixed_inputs()
    generator, discriminator = trainer.generator, trainer.discriminator
    iterations = int(trainer.optimizer.iterations.numpy())
    for _ in range(3):
        g_before, d_before, u_before = (values(generator.trainable_variables),
                                        values(discriminator.trainable_variables), u_values(trainer))
        d = trainer.d_step(images, mask)
        assert set(d) == {'d_loss', 'hinge_pos', 'hinge_neg', 'd_grad_norm'}
        assert all(np.isfinite(list(d.values()))) and d['d_grad_norm'] > 0
        assert all(moved(d_before, values(discriminator.trainable_variables)))
        assert not any(moved(g_before, values(generator.trainable_variables)))
        assert all(moved(u_before, u_values(trainer)))

        d_before, u_before = values(discriminator.trainable_variables), u_values(trainer)
        g = trainer.g_step(images, mask)
        assert set(g) == {'g_loss', 'g_gan_loss', 'ae_loss', 'g_grad_norm'}
        assert all(np.isfinite(list(g.values()))) and g['g_grad_norm'] > 0
        assert all(moved(g_before, values(generator.trainable_variables)))
        assert not any(moved(d_before, values(discriminator.trainable_variables)))
        assert all(moved(u_before, u_values(trainer)))  # D is called in the G step too
    # One Adam for both networks: its counter (bias correction) advances on both updates.
    assert int(trainer.optimizer.iterations.numpy()) == iterations + 6
    assert trainer.tracing_counts() == {'d_step': 1, 'g_step': 1}


def test_step_losses_equal_the_formulas(trainer):
    images, mask = fixed_inputs(seed=1)
    x = images / np.float32(127.5) - np.float32(1.0)
    generator, discriminator, config = trainer.generator, trainer.discriminator, trainer.config

    def direct():
        """The original's graph written out: incomplete, G, complete, D on [real; complete] + mask."""
        incomplete = x * (1 - mask)
        x1, x2, _ = generator(tf.constant(incomplete), tf.constant(mask))
        complete = x2.numpy() * mask + incomplete * (1 - mask)
        both = np.concatenate([np.concatenate([x, complete]), np.tile(mask, [4, 1, 1, 1])], axis=-1)
        pos, neg = np.split(discriminator(tf.constant(both)).numpy(), 2)
        return x1.numpy(), x2.numpy(), pos, neg

    u = u_values(trainer)
    _, _, pos, neg = direct()
    restore_u(trainer, u)  # the step's own D call starts from the same `u`
    d = trainer.d_step(images, mask)
    hinge_pos, hinge_neg = np.maximum(1 - pos, 0).mean(), np.maximum(1 + neg, 0).mean()
    np.testing.assert_allclose(d['hinge_pos'], hinge_pos, RTOL, ATOL)
    np.testing.assert_allclose(d['hinge_neg'], hinge_neg, RTOL, ATOL)
    np.testing.assert_allclose(d['d_loss'], 0.5 * hinge_pos + 0.5 * hinge_neg, RTOL, ATOL)

    u = u_values(trainer)
    x1, x2, _, neg = direct()  # with the discriminator as the D step left it
    restore_u(trainer, u)
    g = trainer.g_step(images, mask)
    ae = config.l1_loss_alpha * (np.abs(x - x1).mean() + np.abs(x - x2).mean())
    np.testing.assert_allclose(g['ae_loss'], ae, RTOL, ATOL)
    np.testing.assert_allclose(g['g_gan_loss'], -neg.mean(), RTOL, ATOL)
    np.testing.assert_allclose(g['g_loss'], config.gan_loss_alpha * -neg.mean() + ae, RTOL, ATOL)
    # ...and the library's own formulas agree with the NumPy ones.
    np.testing.assert_allclose(float(losses.reconstruction_loss(x, x1, x2, config.l1_loss_alpha)), ae,
                               RTOL, ATOL)


def test_wgan_gp_and_per_image_masks(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, gan='wgan_gp', mask_per_image=True, gp_lambda=10.0))
    rng = np.random.default_rng(0)
    mask = trainer.sample_mask(rng)
    assert mask.shape == (2, SIZE, SIZE, 1) and not np.array_equal(mask[0], mask[1])
    images, _ = fixed_inputs()
    d = trainer.d_step(images, mask)
    assert set(d) == {'d_loss', 'wgan_d_loss', 'gp_loss', 'd_grad_norm'}
    assert all(np.isfinite(list(d.values()))) and d['gp_loss'] > 0
    np.testing.assert_allclose(d['d_loss'], d['wgan_d_loss'] + d['gp_loss'], RTOL, ATOL)
    g = trainer.g_step(images, mask)
    assert all(np.isfinite(list(g.values())))


# --- checkpoints -----------------------------------------------------------------------------

def all_tables(trainer):
    return {**generator_table(trainer.generator), **discriminator_table(trainer.discriminator)}


@pytest.fixture(scope='module')
def resumed_run(tmp_path_factory):
    """Trains 2 steps, then resumes with a new Trainer to 3 steps; returns both and the config."""
    config = tiny_config(tmp_path_factory.mktemp('resume'), max_iters=2)
    first = Trainer(config)
    assert first.restored_from is None
    assert first.train() == 2
    saved = {name: v.numpy().copy() for name, v in all_tables(first).items()}
    saved_optimizer = [v.numpy().copy() for v in first.optimizer.variables]
    second = Trainer(config.replace(max_iters=3))
    restored = {
        'step': int(second.step.numpy()), 'iterations': int(second.optimizer.iterations.numpy()),
        'weights': {name: v.numpy().copy() for name, v in all_tables(second).items()},
        'optimizer': [v.numpy().copy() for v in second.optimizer.variables]}
    final_step = second.train()
    return {'config': config, 'saved': saved, 'saved_optimizer': saved_optimizer,
            'restored': restored, 'second': second, 'final_step': final_step}


def test_resume_continues_from_the_last_checkpoint(resumed_run):
    config, restored, second = resumed_run['config'], resumed_run['restored'], resumed_run['second']
    assert second.restored_from == os.path.join(config.log_dir, 'ckpt-2')
    assert restored['step'] == 2
    assert restored['iterations'] == 4  # two Adam updates per iteration
    for name, value in resumed_run['saved'].items():
        np.testing.assert_array_equal(restored['weights'][name], value, err_msg=name)  # incl. `u`
    assert len(restored['optimizer']) == len(resumed_run['saved_optimizer'])
    for restored_value, saved_value in zip(restored['optimizer'], resumed_run['saved_optimizer']):
        np.testing.assert_array_equal(restored_value, saved_value)
    assert resumed_run['final_step'] == 3 and int(second.optimizer.iterations.numpy()) == 6
    assert tf.train.latest_checkpoint(config.log_dir) == os.path.join(config.log_dir, 'ckpt-3')
    assert load_config(os.path.join(config.log_dir, 'config.yml')) == config.replace(max_iters=3)


def test_training_checkpoint_loads_for_inference(resumed_run):
    config, second = resumed_run['config'], resumed_run['second']
    generator, discriminator, report = load_models(config.log_dir)
    assert (report.generator_cnum, report.discriminator_cnum) == (8, 8)
    loaded = {**generator_table(generator), **discriminator_table(discriminator)}
    for name, variable in all_tables(second).items():
        np.testing.assert_array_equal(loaded[name].numpy(), variable.numpy(), err_msg=name)
    image = cv2.imread(os.path.join(os.path.dirname(config.log_dir), 'images', '0.png'))[..., ::-1]
    mask = np.zeros(image.shape[:2], bool)
    mask[10:30, 12:30] = True
    result = Inpainter.from_checkpoint(config.log_dir).inpaint(image, mask)
    assert result.shape == image.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(result[~mask], image[~mask])


def test_nan_loss_stops_and_keeps_the_last_checkpoint(resumed_run):
    config, second = resumed_run['config'], resumed_run['second']
    kernel = second.generator.conv_layers()['conv1'].kernel
    kernel.assign(tf.fill(kernel.shape, float('nan')))
    with pytest.raises(NonFiniteLossError, match=r'^step 4: d_loss is nan in the discriminator step') as info:
        second.train(max_iters=5)
    assert 'ckpt-3 is kept' in str(info.value)
    assert tf.train.latest_checkpoint(config.log_dir) == os.path.join(config.log_dir, 'ckpt-3')
    assert not glob.glob(os.path.join(config.log_dir, 'ckpt-4*'))
    generator, _, _ = load_models(config.log_dir)
    assert np.isfinite(generator.conv_layers()['conv1'].kernel.numpy()).all()


def golden_checkpoint():
    """The golden TF1 checkpoint: the repository's copy, made from ../shared once if missing."""
    if not os.path.isdir(GOLDEN_CHECKPOINT):
        if not os.path.isdir(SHARED_GOLDEN_CHECKPOINT):
            pytest.skip(f'golden checkpoint missing: neither {GOLDEN_CHECKPOINT} nor '
                        f'{SHARED_GOLDEN_CHECKPOINT} exists')
        shutil.copytree(SHARED_GOLDEN_CHECKPOINT, GOLDEN_CHECKPOINT, dirs_exist_ok=True)
    return GOLDEN_CHECKPOINT


def test_fine_tune_from_the_golden_tf1_checkpoint(tmp_path):
    path = golden_checkpoint()
    trainer = Trainer(tiny_config(tmp_path, model_restore=path, gan_with_mask=True))
    assert trainer.restored_from == path and int(trainer.step.numpy()) == 0
    generator, _, _ = load_models(path)
    images, mask = fixed_inputs()
    x = tf.constant(images / 127.5 - 1.0)
    for ours, theirs in zip(trainer.generator(x, mask), generator(x, mask)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    reader = tf.train.load_checkpoint(path)
    table = discriminator_table(trainer.discriminator)
    assert any(name.endswith('kernel_sn/u') for name in table)
    for name, variable in table.items():
        np.testing.assert_array_equal(variable.numpy(), reader.get_tensor(name), err_msg=name)


def test_fine_tune_width_mismatch_is_a_one_line_error(tmp_path):
    path = golden_checkpoint()
    with pytest.raises(CheckpointError) as info:
        Trainer(tiny_config(tmp_path, model_restore=path, cnum_generator=16))
    message = str(info.value)
    assert '\n' not in message and 'snap-0' in message
    assert 'width is 8' in message and 'cnum_generator 16' in message
    with pytest.raises(CheckpointError, match='discriminator has width 8 and 4 input channels'):
        Trainer(tiny_config(tmp_path, model_restore=path, cnum_discriminator=16))


# --- strategy --------------------------------------------------------------------------------

# Run as `python -c TWO_DEVICES <repo> <per_image>`: logical devices must be set up before TF
# initializes its devices, which the test process has long done.
TWO_DEVICES = r'''
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from inpaint.checkpoint import discriminator_table, generator_table
from inpaint.config import DEFAULT_CONFIG, load_config
from inpaint.training import Trainer

per_image = sys.argv[2] == 'True'
config = load_config(DEFAULT_CONFIG, [
    'img_shapes=[32,32,3]', 'height=16', 'width=16', 'max_delta_height=4', 'max_delta_width=4',
    'batch_size=4', 'cnum_generator=8', 'cnum_discriminator=8', 'log_dir=unused',
    'random_seed=True', f'mask_per_image={per_image}'])
one = Trainer(config)
two = Trainer(config, tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1']))
tables = [{**generator_table(t.generator), **discriminator_table(t.discriminator)} for t in (one, two)]
for name, variable in tables[0].items():
    tables[1][name].assign(variable)
rng = np.random.default_rng(0)
batch = rng.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
mask = one.sample_mask(rng)
result = {'replicas': two.num_replicas}
for step in ('d_step', 'g_step'):
    result[step] = [getattr(one, step)(batch, mask), getattr(two, step)(batch, mask)]
    result[step + '_max_weight_diff'] = max(
        float(np.max(np.abs(variable.numpy() - tables[1][name].numpy())))
        for name, variable in tables[0].items())
# Every replica's copy of every variable (incl. the spectral-norm `u`) equals the one device's.
result['max_copy_diff'] = max(
    float(np.max(np.abs(copy.numpy() - tables[0][name].numpy())))
    for name, variable in tables[1].items() for copy in variable.value.values)
result['copies'] = min(len(variable.value.values) for variable in tables[1].values())
result['iterations'] = [int(t.optimizer.iterations.numpy()) for t in (one, two)]
print(json.dumps(result))
'''


@pytest.mark.parametrize('per_image', [True, pytest.param(False, marks=pytest.mark.slow)])
def test_two_replicas_match_one_device(per_image):
    """MirroredStrategy over two logical CPUs vs the default strategy, same weights, batch and mask.

    With per-image masks both the batch and the masks are split over the replicas; with one mask
    per batch (the original's way, marked slow as it adds little: the mask is just shared) only
    the batch is.

    Losses and gradient norms (of the whole-batch gradient) must agree to `1e-5` relative: the
    replicas compute the same per-image terms, only the order of float32 sums differs. The gradient
    norm is what checks the per-replica loss scaling, since Adam's first update is invariant to the
    gradient's scale. Weights after the updates must agree to `1e-6` absolute: one Adam step moves
    a weight by at most about lr = 1e-4, so a replica that applied another (or no) update would
    differ by ~1e-4, while summation-order noise changes the updates by < 1e-7 (observed ~1e-7).
    """
    run = subprocess.run([sys.executable, '-c', TWO_DEVICES, REPO, str(per_image)],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result['replicas'] == 2 and result['copies'] == 2
    for step in ('d_step', 'g_step'):
        one, two = result[step]
        assert set(one) == set(two)
        for name in one:
            np.testing.assert_allclose(two[name], one[name], rtol=RTOL, atol=0, err_msg=f'{step} {name}')
        assert result[step + '_max_weight_diff'] < 1e-6, step
    assert result['max_copy_diff'] < 1e-6  # every replica's copy, `u` included
    assert result['iterations'] == [2, 2]


def test_not_enough_gpus_is_a_config_error(tmp_path):
    from inpaint.config import ConfigError
    if len(tf.config.list_logical_devices('GPU')) >= 2:
        pytest.skip('this machine has two GPUs')
    with pytest.raises(ConfigError, match='num_gpus_per_job: 2 GPUs requested'):
        Trainer(tiny_config(tmp_path, num_gpus_per_job=2))


def test_static_view_mask_is_the_originals_fixed_box(tmp_path):
    mask = static_view_mask(tiny_config(tmp_path, height=12, width=10))
    rows, cols = np.nonzero(mask[0, :, :, 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 17, 5, 14)  # top h//2, left w//2


# --- command line ----------------------------------------------------------------------------

def test_cli_bad_set_exits_2_naming_the_key(capsys):
    assert train_cli.main(['--set', 'batch_sise=4']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'batch_sise' in err and 'unknown key' in err
    assert train_cli.main(['--set', 'batch_size=zero']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'batch_size' in err


def test_cli_end_to_end(tmp_path, capsys):
    overrides = tiny_overrides(os.fspath(tmp_path), max_iters=2, train_spe=5, val_psteps=1)
    assert train_cli.main([arg for item in overrides for arg in ('--set', item)]) == 0
    log_dir = tmp_path / 'log'
    assert (log_dir / 'config.yml').is_file()
    assert tf.train.latest_checkpoint(log_dir) == str(log_dir / 'ckpt-2')  # the final save
    assert len(glob.glob(str(log_dir / 'events.out.tfevents.*'))) == 1
    tags = {value.tag for _, value in summaries(log_dir)}
    assert {'losses/d_loss', 'losses/g_loss', 'losses/g_gan_loss', 'losses/ae_loss',
            'losses/hinge_pos', 'losses/hinge_neg', 'optimizer/lr', 'gradients/d_grad_norm',
            'gradients/g_grad_norm', 'raw_incomplete_complete_flow', 'static_view/0',
            'static_view/1'} <= tags
    assert 'Finished at step 2' in capsys.readouterr().out


def test_cli_nan_stop_exits_1(monkeypatch, tmp_path, capsys):
    def stop(self, max_iters=None):
        raise NonFiniteLossError('step 7: g_loss is nan in the generator step; stopped')
    monkeypatch.setattr(Trainer, 'train', stop)
    overrides = tiny_overrides(os.fspath(tmp_path), val=False)
    assert train_cli.main([arg for item in overrides for arg in ('--set', item)]) == 1
    assert 'step 7: g_loss is nan' in capsys.readouterr().err


# --- a short real run ------------------------------------------------------------------------

def hole_l1(trainer, images, masks):
    """Reconstruction L1 on the holes: mean of |x - x2| over hole pixels and channels, x in [-1, 1]."""
    x2 = trainer.inpaint(tf.constant(images), tf.constant(masks))['x2'].numpy()
    error = np.abs(images - x2).mean(axis=-1, keepdims=True)  # (N, H, W, 1)
    return float((error * masks).sum() / masks.sum())


def ae_losses(log_dir):
    """step -> the training ae_loss written to the events files of log_dir."""
    return {step: float(tf.make_ndarray(value.tensor))
            for step, value in summaries(log_dir) if value.tag == 'losses/ae_loss'}


@pytest.mark.slow
def test_short_real_run_learns_and_resumes(tmp_path, capsys):
    """A few hundred steps on real photos, killed (new Trainer) and resumed half-way.

    64x64 random crops of imagenet_sample, widths 8, batch 8, 300 steps in two train() calls
    (about 90 s on 2 cores). Measured: the reconstruction L1 on the holes (`hole_l1`) of 16 held-out
    val.flist images (centre crops) with fixed training masks, one per image.

    Two settings differ from inpaint.yml, so that a few hundred steps show learning reliably:
    gan_loss_alpha 0.1 (at 64 px and width 8 the full-weight adversarial gradient makes the
    held-out L1 swing by +-20% between evaluations this early; with 0.1 the GAN still trains both
    networks) and lr 3e-4 (instead of 1e-4). Observed: 0.434 at the start, ~0.29 at 150 and 300
    steps; asserted: < 0.8x the start after 300 steps, and the training ae_loss averaged over the
    resumed half below its average over the first half.
    """
    train_flist, val_flist = (os.path.join(IMAGENET, name) for name in ('train.flist', 'val.flist'))
    if not (os.path.isfile(train_flist) and os.path.isfile(val_flist)):
        pytest.skip(f'the ImageNet sample is missing: {IMAGENET} (../shared/data) has no file lists')
    from inpaint import data, masks
    config = load_config(DEFAULT_CONFIG, [
        f'data_flist.imagenet_sample=[{train_flist}, {val_flist}]', 'dataset=imagenet_sample',
        'img_shapes=[64,64,3]', 'random_crop=True', 'height=32', 'width=32', 'max_delta_height=8',
        'max_delta_width=8', 'batch_size=8', 'cnum_generator=8', 'cnum_discriminator=8',
        'gan_loss_alpha=0.1', 'lr=3e-4', f'log_dir={tmp_path / "log"}', 'random_seed=True',
        'log_steps=1', 'val_psteps=100', 'train_spe=100', 'max_iters=300', 'num_parallel_calls=2'])
    paths = data.list_images(val_flist)[:16]
    images = np.stack([data.center_crop_or_resize(data.decode_bgr(path), (64, 64), True)
                       for path in paths]).astype(np.float32) / 127.5 - 1.0
    rng = np.random.default_rng(7)
    hole_masks = np.stack([masks.training_mask(64, 64, 32, 32, 0, 0, 8, 8, rng)
                           for _ in paths])[..., None]

    first = Trainer(config)
    start = hole_l1(first, images, hole_masks)
    assert first.train(max_iters=150) == 150
    middle = hole_l1(first, images, hole_masks)

    second = Trainer(config)  # as after a kill: a new process would build the same
    assert int(second.step.numpy()) == 150 and second.restored_from.endswith('ckpt-150')
    np.testing.assert_allclose(hole_l1(second, images, hole_masks), middle, rtol=1e-6)
    assert second.train() == 300
    end = hole_l1(second, images, hole_masks)

    assert middle < 0.9 * start, (start, middle)
    assert end < 0.8 * start, (start, middle, end)
    ae = ae_losses(config.log_dir)
    assert sorted(ae) == list(range(1, 301))  # one scalar per step, continued across the resume
    first_half = np.mean([ae[step] for step in range(1, 151)])
    second_half = np.mean([ae[step] for step in range(151, 301)])
    assert second_half < 0.95 * first_half, (first_half, second_half)
    assert 'Training steps 150..300 (resumed from' in capsys.readouterr().out
