"""Training checked against the original's own training graph, in both modes: the goldens
`../shared/golden/train_small` and (`guided: True`, the edge-guided mode) `guided_small/train`,
read from ../shared only (each test is skipped without it; tests/data keeps only their converted
`weights`, for tests/test_training.py and tests/test_checkpoint.py).

Each golden (see its README) is a TF1 training snapshot (cnum 8, seeded random weights) and two
iterations of the authors' `build_graph_with_losses` with one shared `tf.train.AdamOptimizer(1e-4,
0.5, 0.999)`, gan sngan, gan_with_mask, 128x128, batch 2, fixed masks; guided, each batch's edge
images (`edge_d`, `edge_g`) too. An iteration is a D step on `x_d[i]` with `masks_d`, then a G step
on `x_g[i]` with `masks_g`. The test restores the snapshot into a `RunState` as `model_restore` (a
fine-tune start), runs the same two iterations through the public `GAN.d_step` / `g_step` (guided:
on `gan.step_batch((x, edge))`, the batch as training makes it) and compares. The guided run then
trains one more iteration through `training.train` on the fixture's pictures written as files with
their `_edge.jpg` (its steps are compiled for these shapes already).

Backend-neutral on purpose (no TensorFlow calls here): run it with KERAS_BACKEND=jax as well.

Tolerances (the issue's):
- Losses: 1e-5 absolute (values ~1; the graphs differ only in float32 summation order, ~1e-7).
- Weight updates (after - before, per element): 1e-6 absolute. At these first Adam steps an update
  is about lr * sign(gradient) = +-1e-4, so a wrong gradient sign, a missing or extra update, or a
  wrong bias correction shows as >= ~1e-5; the golden's one-float32-ulp perturbation moved no update
  by more than 1e-6 (`update_mismatch_fraction_at_one_ulp` is 0).
- Spectral-norm `u` after the two iterations: 1e-5 relative (unit vectors; four power steps).
- Adam's bias correction: the powers after the two iterations are 0.5^5 and 0.999^5 as the
  golden's `beta1_power` / `beta2_power` (TF1 stores the power the *next* update uses, Keras the
  count of updates done: the power is beta^(iterations + 1)), i.e. four updates, two per iteration.
"""
import json
import os

import keras
import numpy as np
import pytest

from inpaint.checkpoint import discriminator_table, generator_table
from inpaint.config import DEFAULT_CONFIG, load_config
from inpaint.gan import step_batch
from inpaint.run_state import RunState
from conftest import shared_path

# mode -> the golden's folder under ../shared
FIXTURES = {'unguided': ('golden', 'train_small'), 'guided': ('golden', 'guided_small', 'train')}
LOSS_ATOL = 1e-5
UPDATE_ATOL = 1e-6
U_RTOL = 1e-5


def to_numpy(variable):
    return np.array(keras.ops.convert_to_numpy(variable.value), copy=True)


def golden_name(name):
    """The npz key of an authors' tensor name: `after__` + name with `/` written `__`."""
    return 'after__' + name.replace('/', '__')


@pytest.fixture(scope='module', params=sorted(FIXTURES))
def golden(request):
    """The golden's TF1 snapshot (path), arrays and info, from ../shared (skipped without it)."""
    paths = [shared_path(*FIXTURES[request.param], name)
             for name in ('checkpoint_dir', 'train_golden.npz', 'train_golden.json')]
    with open(paths[2]) as handle:
        info = json.load(handle)
    assert info.get('guided', False) == (request.param == 'guided')
    with np.load(paths[1]) as arrays:
        arrays = dict(arrays)
    return {'checkpoint': paths[0], 'arrays': arrays, 'info': info, 'guided': request.param == 'guided'}


def write_pictures(folder, arrays):
    """The fixture's batches as files, guided with their edge images beside them as the
    original's training reads them (`<name>_edge.jpg`, grey JPEG: its 0/255 lines come back
    exactly through the threshold); returns the folder."""
    import cv2
    os.makedirs(folder)
    for index, image in enumerate(arrays['x_d'].reshape(-1, *arrays['x_d'].shape[2:])):
        cv2.imwrite(os.path.join(folder, f'{index}.png'), image)  # BGR, as the fixture
    if 'edge_d' in arrays:
        for index, edge in enumerate(arrays['edge_d'].reshape(-1, *arrays['edge_d'].shape[2:])):
            cv2.imwrite(os.path.join(folder, f'{index}_edge.jpg'), edge[..., 0],
                        [cv2.IMWRITE_JPEG_QUALITY, 100])
    return folder


@pytest.fixture(scope='module')
def run(golden, tmp_path_factory):
    """Restores the snapshot, runs the golden's two iterations; returns what the tests compare.

    The config also names a folder of the fixture's pictures as its data (train and validation,
    static views and held-out images), which the two iterations do not read: the guided loop
    test trains on it with this run."""
    info, arrays = golden['info'], golden['arrays']
    height, width, channels = info['image']
    adam, gan = info['adam'], info['config']
    folder = tmp_path_factory.mktemp('golden_train')
    pictures = write_pictures(str(folder / 'pictures'), arrays)
    config = load_config(DEFAULT_CONFIG, [
        f'log_dir={folder / "log"}', f'data_flist.golden=[{pictures}, {pictures}]', 'dataset=golden',
        f'guided={golden["guided"]}', f'edge_threshold={info.get("edge_threshold", 0.6)}',
        f'model_restore={golden["checkpoint"]}', f'img_shapes=[{height},{width},{channels}]',
        f'height={height // 2}', f'width={width // 2}', f'max_delta_height={height // 8}',
        f'max_delta_width={width // 8}', f'batch_size={info["batch_size"]}',
        f'cnum_generator={info["cnum_generator"]}', f'cnum_discriminator={info["cnum_discriminator"]}',
        f'gan={gan["gan"]}', f'gan_with_mask={gan["gan_with_mask"]}',
        f'gan_loss_alpha={gan["gan_loss_alpha"]}', f'l1_loss_alpha={gan["l1_loss_alpha"]}',
        f'ae_loss={gan["ae_loss"]}', f'lr={adam["lr"]}', f'beta1={adam["beta1"]}',
        f'beta2={adam["beta2"]}', 'random_seed=False', 'num_gpus_per_job=1',
        'val=True', 'static_view_size=2', 'val_psteps=1', 'heldout_steps=1', 'heldout_images=2',
        'log_steps=1', 'train_spe=1', 'num_parallel_calls=1'])
    run = RunState(config)
    assert run.restored_from == golden['checkpoint']
    gan = run.gan
    table = {**generator_table(gan.generator), **discriminator_table(gan.discriminator)}
    before = {name: to_numpy(variable) for name, variable in table.items()}
    iterations_before = int(keras.ops.convert_to_numpy(gan.optimizer.iterations))
    mask_d, mask_g = (arrays[key].astype(np.float32)[None, :, :, None] for key in ('masks_d', 'masks_g'))
    if golden['guided']:  # the batches as training makes them: images and edge lines
        batches = [[step_batch((x.astype(np.float32), edge.astype(np.float32)), config)
                    for x, edge in zip(arrays[f'x_{kind}'], arrays[f'edge_{kind}'])] for kind in 'dg']
    else:
        batches = [[x.astype(np.float32) for x in arrays[f'x_{kind}']] for kind in 'dg']
    losses = []
    for x_d, x_g in zip(*batches):
        d = gan.d_step(x_d, mask_d)
        g = gan.g_step(x_g, mask_g)
        losses.append({'d_loss': d['d_loss'], 'g_loss': g['g_loss'], 'ae_loss': g['ae_loss']})
    after = {name: to_numpy(variable) for name, variable in table.items()}
    return {'state': run, 'gan': gan, 'before': before, 'after': after, 'losses': losses,
            'iterations': (iterations_before,
                           int(keras.ops.convert_to_numpy(gan.optimizer.iterations)))}


def test_every_tensor_is_compared(golden, run):
    ours = set(run['after'])
    theirs = {key for key in golden['arrays'] if key.startswith('after__')}
    assert {golden_name(name) for name in ours} == theirs, (
        sorted(theirs ^ {golden_name(name) for name in ours}))


def test_losses_match_the_originals(golden, run):
    expected = golden['info']['losses']
    assert len(run['losses']) == len(expected) == 2
    errors = {f'iteration {i + 1} {name}': abs(ours[name] - theirs[name])
              for i, (ours, theirs) in enumerate(zip(run['losses'], expected)) for name in theirs}
    bad = {key: value for key, value in errors.items() if not value <= LOSS_ATOL}
    assert not bad, f'losses differ from the golden by more than {LOSS_ATOL}: {bad}; ours ' \
                    f'{run["losses"]}, golden {expected}'


def test_weight_updates_match_the_originals(golden, run):
    bad = {}
    for name, before in run['before'].items():
        if name.endswith('kernel_sn/u'):
            continue  # not trained; see the next test
        ours = run['after'][name] - before
        theirs = golden['arrays'][golden_name(name)] - before
        assert np.any(theirs != 0), f'{name}: the golden does not update it'
        error = np.abs(ours - theirs)
        if not np.max(error) <= UPDATE_ATOL:
            bad[name] = (float(np.max(error)), f'{np.mean(error > UPDATE_ATOL):.1%} of elements',
                         f'max|golden update| {float(np.max(np.abs(theirs))):.3g}')
    assert not bad, (f'{len(bad)} tensors have updates differing from the golden by more than '
                     f'{UPDATE_ATOL} (max error, fraction, scale): {bad}')


def test_spectral_norm_vectors_match_the_originals(golden, run):
    bad = {}
    for name, ours in run['after'].items():
        if not name.endswith('kernel_sn/u'):
            continue
        theirs = golden['arrays'][golden_name(name)]
        assert not np.array_equal(theirs, run['before'][name]), f'{name}: the golden does not move it'
        relative = float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))
        if not relative <= U_RTOL:
            bad[name] = relative
    assert not bad, f'kernel_sn/u differ from the golden by more than {U_RTOL} relative: {bad}'


def test_bias_correction_advanced_as_the_originals(golden, run):
    adam = golden['info']['adam']
    start, end = run['iterations']
    assert (start, end) == (0, 4), f'optimizer iterations {start} -> {end}; expected 0 -> 4 ' \
                                   f'(one shared Adam: two updates per iteration)'
    # TF1's beta_power after n updates is beta^(n + 1): the power its next update will use.
    powers = [adam['beta1'] ** (end + 1), adam['beta2'] ** (end + 1)]
    np.testing.assert_allclose(powers, golden['info']['beta_powers_after'], rtol=1e-6,
                               err_msg='Adam bias-correction powers after the two iterations')


def test_guided_training_loop_reads_edge_files(golden, run, caplog):
    """`guided: True` through `training.train`: the edge images beside the pictures are read (and
    left out of the folder's images), the step, previews, static views and held-out L1 take the
    edge lines, and the run's checkpoint loads for inference as a guided model."""
    if not golden['guided']:
        pytest.skip('the guided fixture only')
    from inpaint import training
    from inpaint.inference import Inpainter
    state = run['state']
    caplog.clear()
    assert training.train(state.config, max_iters=1, run=state) == 1
    assert not [r for r in caplog.records if 'unreadable' in r.getMessage()]  # no *_edge.jpg image
    log_dir = state.config.log_dir
    assert os.path.exists(os.path.join(log_dir, 'ckpt-1.h5'))
    assert Inpainter.from_checkpoint(log_dir).generator.guided
    views = training.validation_images(state.config, 2)  # 0.png, 1.png: x_d[0]'s two images
    lines = golden['arrays']['edge_d'][0, ..., 0] > 153  # 0/255 maps: the threshold's lines
    assert views.shape == (2, 128, 128, 4) and lines.any()
    np.testing.assert_array_equal(views[..., 3] == 1, lines)
    # The static view's incomplete panel (raw | incomplete | complete | flow) shows the hole's
    # lines in white and the rest of the hole grey, as the original's `batch_incomplete + edge`.
    import cv2
    from tensorboard.backend.event_processing import event_accumulator
    reader = event_accumulator.EventAccumulator(log_dir, size_guidance={'images': 0, 'scalars': 0})
    reader.Reload()
    assert {'raw_incomplete_complete_flow/image/0', 'static_view/0', 'static_view/1'} <= set(
        reader.Tags()['images']) and 'losses/heldout_l1' in reader.Tags()['scalars']
    (event,) = reader.Images('static_view/0')
    panel = cv2.imdecode(np.frombuffer(event.encoded_image_string, np.uint8), cv2.IMREAD_COLOR)[:, 128:256]
    hole = training.static_view_mask(state.config)[0, ..., 0] == 1
    assert (hole & lines[0]).any() and (hole & ~lines[0]).any()
    assert np.all(panel[hole & lines[0]] == 255) and np.all(np.abs(panel[hole & ~lines[0]].astype(int) - 128) <= 1)
