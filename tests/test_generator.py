"""The generator against the original graph's outputs (golden) and its own batch semantics."""
import os

import numpy as np
import pytest
from keras import ops

from conftest import (GOLDEN_CHECKPOINT, GOLDEN_WEIGHTS, HAS_TENSORFLOW, HERE, STAGE_MAX,
                      STAGE_MEAN, golden_case, golden_intermediates, perturbed_weights, shared_path,
                      to_numpy)
from inpaint import backends
from inpaint.checkpoint import load_models, model_tensors
from inpaint.flow import offset_flow
from inpaint.generator import InpaintGenerator, build_generator, with_dtype
from inpaint.imageio import read_image, read_mask
from inpaint.inference import to_network
from inpaint.layers import ContextualAttention, GatedUpsample

NAMES = ('x_stage1', 'x_stage2', 'offset_flow')


def _golden(name):
    """The case's picture paths and its intermediates (from ../shared: skipped without it)."""
    return {**golden_case(name), **golden_intermediates(name)}


def _inputs(case):
    image, mask = read_image(case['input']), read_mask(case['mask'])
    mask = mask[None, :, :, None].astype(np.float32)
    return to_network(image[None]) * (1 - mask), mask


def _run(generator, image, mask):
    """Eager call -> [x_stage1, x_stage2, offset_flow picture] as NumPy (the golden's names)."""
    x1, x2, offsets = generator(ops.convert_to_tensor(image), ops.convert_to_tensor(mask))
    return [to_numpy(x1), to_numpy(x2), offset_flow(to_numpy(offsets))]


def _flow_same(a, b):
    """Fraction of flow pixels identical (golden README: >= 99%)."""
    return np.all(np.abs(a - b) < 1e-6, axis=-1).mean()


@pytest.mark.once
def test_architecture_size():
    generator = build_generator(48)
    assert len(generator.conv_layers()) == 42
    assert len(generator.weights) == 84
    assert 4.0e6 < generator.count_params() < 4.1e6  # about 4.05 M in the paper's code


@pytest.mark.once
def test_dtype_policy_is_given_to_every_layer_at_construction():
    """keras-hub's pattern: the policy reaches every sub-layer (the upsamplings' inner convs too)
    when they are built, contextual attention stays float32, the weights stay float32, and the
    config carries the policy; `with_dtype` copies the weights and leaves its argument as it was."""
    generator = build_generator(8)
    bfloat16 = with_dtype(generator, 'mixed_bfloat16')
    layers = list(bfloat16._flatten_layers(include_self=True))  # pylint: disable=protected-access
    attention = [layer for layer in layers if isinstance(layer, ContextualAttention)]
    assert len(attention) == 1 and attention[0].dtype_policy.name == 'float32'
    others = [layer for layer in layers if not isinstance(layer, ContextualAttention)]
    upsamplings = sum(isinstance(layer, GatedUpsample) for layer in others)
    assert upsamplings == 4 and len(others) == 1 + 42 + upsamplings  # + the upsamplings' convs
    assert {layer.dtype_policy.name for layer in others} == {'mixed_bfloat16'}
    assert {variable.dtype for variable in bfloat16.weights} == {'float32'}
    assert {layer.dtype_policy.name for layer in generator._flatten_layers()} == {'float32'}  # pylint: disable=protected-access
    for got, want in zip(bfloat16.get_weights(), generator.get_weights()):
        np.testing.assert_array_equal(got, want)
    rebuilt = InpaintGenerator.from_config(bfloat16.get_config())
    assert rebuilt.dtype_policy.name == 'mixed_bfloat16' and rebuilt.cnum == 8


@pytest.mark.parametrize('name', ['rocket256', 'motorcycle184x264'])
def test_matches_golden(golden_models, name):
    case = _golden(name)
    x1, x2, flow = _run(golden_models[0], *_inputs(case))
    for key, got in (('x_stage1', x1), ('x_stage2', x2)):
        diff = np.abs(got - case[key])
        assert diff.max() < STAGE_MAX and diff.mean() < STAGE_MEAN, (key, diff.max(), diff.mean())
    assert _flow_same(flow, case['offset_flow']) >= 0.99


def test_coffee_matches_golden_to_float32_noise_floor(golden_models):
    """coffee400x600 with these random weights is ill-conditioned: changing every weight by one
    float32 rounding step (1e-7 relative) moves x_stage1 by ~2e-3 and x_stage2 by ~8e-3 (max), more
    than the README's 1e-3, so no float32 implementation with another summation order can meet it.
    We assert (a) the README's tolerance where it is achievable (flow, x_stage1 mean) and (b) that
    the difference from golden is no larger than twice that rounding-level sensitivity."""
    case = _golden('coffee400x600')
    image, mask = _inputs(case)
    got = dict(zip(NAMES, _run(golden_models[0], image, mask)))
    with perturbed_weights(golden_models[0]):
        noise = dict(zip(NAMES, _run(golden_models[0], image, mask)))
    assert _flow_same(got['offset_flow'], case['offset_flow']) >= 0.99
    assert np.abs(got['x_stage1'] - case['x_stage1']).mean() < STAGE_MEAN
    for key in ('x_stage1', 'x_stage2'):
        diff = np.abs(got[key] - case[key])
        floor = np.abs(noise[key] - got[key])
        assert diff.max() <= 2 * floor.max() and diff.mean() <= 2 * floor.mean(), key
        assert diff.mean() < 1e-4  # a real error (resize, padding, attention) is > 1e-2


@pytest.mark.once  # on JAX the batch rule is test_batch_with_two_masks_matches_single_runs
@pytest.mark.parametrize('name', ['rocket256', 'motorcycle184x264'])
def test_batch_of_two_images_sharing_a_mask(golden_models, name):
    case = _golden(name)
    image, mask = _inputs(case)
    other = image[:, ::-1, ::-1].copy() * (1 - mask)  # a different image, same hole
    batch = _run(golden_models[0], np.concatenate([image, other]), mask)
    single_other = _run(golden_models[0], other, mask)
    for i, key in enumerate(NAMES[:2]):
        diff = np.abs(batch[i][0] - case[key][0])
        assert diff.max() < STAGE_MAX and diff.mean() < STAGE_MEAN, key
        diff = np.abs(batch[i][1] - single_other[i][0])
        assert diff.max() < STAGE_MAX and diff.mean() < STAGE_MEAN, key
    assert _flow_same(batch[2][:1], case['offset_flow']) >= 0.99


@pytest.mark.parametrize('name', ['rocket256', pytest.param('motorcycle184x264', marks=pytest.mark.once)])
def test_batch_with_two_masks_matches_single_runs(golden_models, name):
    case = _golden(name)
    image, mask = _inputs(case)
    full = to_network(read_image(case['input'])[None])
    mask2 = np.zeros_like(mask)
    h, w = mask.shape[1:3]
    mask2[:, h // 4:h // 2, w // 2:w // 2 + w // 4] = 1
    image2 = full[:, ::-1] * (1 - mask2)
    batch = _run(golden_models[0], np.concatenate([image, image2]), np.concatenate([mask, mask2]))
    single2 = _run(golden_models[0], image2, mask2)
    for i, key in enumerate(NAMES[:2]):
        for got, want in ((batch[i][0], case[key][0]), (batch[i][1], single2[i][0])):
            diff = np.abs(got - want)
            assert diff.max() < STAGE_MAX and diff.mean() < STAGE_MEAN, key
    # The second image's own mask was used: outside both holes it differs from a shared-mask run.
    shared = _run(golden_models[0], np.concatenate([image, image2]), mask)
    assert np.abs(shared[1][1] - batch[1][1]).max() > 1e-2


def test_compiled_call_equals_eager(golden_models):
    """The backend's compiled inference (tf.function / jax.jit / eager torch) gives the eager
    call's outputs, offsets included."""
    case = golden_case('motorcycle184x264')
    image, mask = _inputs(case)
    compiled = backends.compile_inference(golden_models[0])(image, mask)
    x1, x2, offsets = golden_models[0](ops.convert_to_tensor(image), ops.convert_to_tensor(mask))
    assert compiled[2].shape == (1, 23, 33, 2) and compiled[2].dtype == np.int32
    # Compilation may fuse and reorder float32 sums (TF's graph optimizer, XLA): the README's
    # tolerance for two implementations (measured: max 1.6e-5 on 0.013% of x_stage2 on TF CPU).
    for got, want in ((compiled[0], x1), (compiled[1], x2)):
        diff = np.abs(got - to_numpy(want))
        assert diff.max() < STAGE_MAX and diff.mean() < STAGE_MEAN, (diff.max(), diff.mean())
    assert np.mean(compiled[2] == to_numpy(offsets)) >= 0.99  # argmax ties may flip


def test_matches_golden_with_attention_in_one_row_blocks(golden_models):
    """The blocked attention (the default memory bound holds all of 256x256 in one block) gives the
    same result when forced to one query row per block, wrap-around rows included."""
    case = _golden('rocket256')
    attention = golden_models[0].contextual_attention
    default = attention.block_bytes
    try:
        attention.block_bytes = 1
        x1, x2, flow = _run(golden_models[0], *_inputs(case))
    finally:
        attention.block_bytes = default
    diff = np.abs(x2 - case['x_stage2'])
    assert diff.max() < STAGE_MAX and diff.mean() < STAGE_MEAN
    assert _flow_same(flow, case['offset_flow']) >= 0.99


@pytest.mark.skipif(not HAS_TENSORFLOW, reason='TensorFlow is not installed: the TF1 golden '
                                                'checkpoints cannot be read here')
@pytest.mark.parametrize('fixture', ['golden_small', 'golden_train_small'])
def test_converted_weights_folder_equals_the_tf1_checkpoint(fixture):
    """tests/data/<fixture>/weights (made by `python -m inpaint.commands.convert`) holds exactly the TF1
    checkpoint's tensors, so machines without TensorFlow test the same models. The training
    golden's TF1 checkpoint is in ../shared only (skipped without it)."""
    folder = os.path.join(HERE, 'data', fixture)
    if fixture == 'golden_small':
        checkpoint = os.path.join(folder, 'checkpoint_dir')
        assert (checkpoint, os.path.join(folder, 'weights')) == (GOLDEN_CHECKPOINT, GOLDEN_WEIGHTS)
    else:
        checkpoint = shared_path('golden', 'train_small', 'checkpoint_dir')
    tf1 = load_models(checkpoint)
    weights = load_models(os.path.join(folder, 'weights'))
    assert (tf1[2].format, weights[2].format) == ('tf1', 'weights')
    assert sorted(tf1[2].loaded) == sorted(weights[2].loaded)
    expected, got = model_tensors(*tf1[:2]), model_tensors(*weights[:2])
    assert sorted(expected) == sorted(got) and len(got) == 84 + 3 * 6  # G; D with kernel_sn/u
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)
