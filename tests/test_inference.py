"""Inpainter: the original's exact behaviour against golden output.png, and the default's promises."""
import os

import keras
import numpy as np
import pytest

from conftest import REPO, assert_batched_equals_single, golden_case, perturbed_weights
from inpaint.imageio import InputError, read_image, read_mask, swap_rb
from inpaint.inference import Inpainter, from_network, grey_if_grey, padded_size, to_network


@pytest.fixture(scope='module')
def inpainter(golden_models):
    return Inpainter(golden_models[0])


def _case(name):
    case = golden_case(name)
    return read_image(case['input']), read_mask(case['mask']), read_image(case['output'])


def test_normalization_round_trip_matches_the_original_graph():
    # The golden outputs' known pixels show what the original graph does to each value 0..255.
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16).repeat(3, 0).transpose(1, 2, 0)
    back = from_network(to_network(values))
    assert np.array_equal(back[..., 0], back[..., 2])
    changed = np.flatnonzero(back[..., 0].ravel() != values[..., 0].ravel())
    assert 0 < len(changed) < 64 and np.all(back[..., 0].ravel()[changed] == changed - 1)


def test_each_channel_flip_is_one_pass_with_a_contiguous_result():
    """`swap_rb` (the flip at each boundary: file, network) reverses the channels of uint8,
    float32, cropped (non-contiguous) and other-dtype batches; `to_network` and `from_network` give
    the values of the plain NumPy formulas, as contiguous arrays (a reversed view slowed every later
    pass: 15-20 ms each at 2048 px)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 12, 10, 3), dtype=np.uint8)
    for array in (rgb, rgb.astype(np.float32), rgb[:, 2:9, 1:7], rgb.astype(np.int64), rgb[0]):
        got = swap_rb(array)
        assert got.dtype == array.dtype and got.flags.c_contiguous
        np.testing.assert_array_equal(got, array[..., ::-1])
    x = to_network(rgb)
    np.testing.assert_array_equal(x, rgb[..., ::-1].astype(np.float32) * np.float32(1 / 127.5) - 1)
    y = from_network(x, rounding=True)
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y, rgb)


@pytest.mark.parametrize('name', ['rocket256', 'motorcycle184x264'])
def test_original_mode_reproduces_output_png(inpainter, name):
    image, mask, golden = _case(name)
    out = inpainter.inpaint(image, mask, original=True)
    diff = np.abs(out.astype(int) - golden)
    # Golden README: identical bytes on >= 99.9% of pixels, none off by more than 1.
    assert diff.max() <= 1 and np.all(diff == 0, axis=-1).mean() >= 0.999


def test_original_mode_coffee_within_float32_noise(inpainter):
    """coffee400x600 is ill-conditioned (see test_generator): pixels outside the hole must be
    identical, none off by more than 1, and no more hole pixels differ than a rounding-level (1e-7)
    change of the weights makes differ."""
    image, mask, golden = _case('coffee400x600')
    out = inpainter.inpaint(image, mask, original=True)
    diff = np.abs(out.astype(int) - golden).max(-1)
    assert diff.max() <= 1 and np.all(diff[~mask] == 0)
    with perturbed_weights(inpainter.generator):
        perturbed = inpainter.inpaint(image, mask, original=True)
    noise = (np.abs(perturbed.astype(int) - out).max(-1) > 0)[mask].mean()
    assert (diff > 0)[mask].mean() <= 2 * noise


def test_default_mode_keeps_known_pixels_and_size(inpainter):
    image, mask, golden = _case('rocket256')
    out = inpainter.inpaint(image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], image[~mask])
    # Holes: rounding instead of the original's truncation, so within one level of golden.
    assert np.abs(out[mask].astype(int) - golden[mask]).max() <= 1


@pytest.mark.parametrize('shape', [(37, 53), (8, 8), (5, 3), (250, 17)])
@pytest.mark.filterwarnings('ignore:You are using a softmax over axis -1')  # 8x8: one 1x1 patch
def test_any_size_works(inpainter, shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, size=shape + (3,), dtype=np.uint8)
    mask = np.zeros(shape, bool)
    mask[shape[0] // 4:shape[0] // 2 + 1, shape[1] // 4:shape[1] // 2 + 1] = True
    out = inpainter.inpaint(image, mask)
    assert out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    assert not np.array_equal(out[mask], image[mask])


def test_padding_equals_running_the_padded_image(inpainter):
    image, mask, _ = _case('motorcycle184x264')
    crop, crop_mask = image[:181, :259], mask[:181, :259]
    out = inpainter.inpaint(crop, crop_mask)
    pad_h, pad_w = padded_size(181) - 181, padded_size(259) - 259  # 192 - 181, 288 - 259
    assert (pad_h, pad_w) == (11, 29)
    padded = np.pad(crop, [(0, pad_h), (0, pad_w), (0, 0)], mode='edge')
    padded_mask = np.pad(crop_mask, [(0, pad_h), (0, pad_w)])
    _, x2, _ = inpainter.predict(to_network(padded[None]), padded_mask[None, :, :, None].astype(np.float32))
    expected = from_network(x2, rounding=True)[0, :181, :259]
    assert np.array_equal(out[crop_mask], expected[crop_mask])


def test_padded_size_values():
    examples = {1: 8, 5: 8, 8: 8, 9: 16, 37: 40, 64: 64, 65: 72, 181: 192, 250: 256, 252: 256,
                255: 256, 256: 256, 257: 288, 272: 288, 289: 320, 300: 320, 600: 640, 1000: 1024, 2048: 2048}
    assert {n: padded_size(n) for n in examples} == examples


def test_padded_size_is_a_bucketed_multiple_of_8():
    sizes = np.arange(1, 4097)
    padded = np.array([padded_size(int(n)) for n in sizes])
    assert np.all(padded >= sizes) and np.all(padded % 8 == 0)
    assert np.all(np.diff(padded) >= 0)  # monotonic
    assert all(padded_size(int(p)) == p for p in padded)  # a padded size is its own bucket
    small = sizes <= 64
    assert np.array_equal(padded[small], -(-sizes[small] // 8) * 8)  # next multiple of 8
    # Above 64 px: at most 12.5% extra, and at most 8 buckets per octave.
    assert np.all(padded[~small] - sizes[~small] <= 0.125 * sizes[~small])
    for low in (64, 128, 256, 512, 1024, 2048):
        assert len(set(padded[(sizes > low) & (sizes <= 2 * low)])) <= 8, low


def test_compiles_once_per_padded_shape(golden_models):
    if keras.backend.backend() == 'torch':
        pytest.skip('the torch backend runs eagerly: nothing is compiled')
    inpainter = Inpainter(golden_models[0], restrict=False)  # the whole network's compiles
    rng = np.random.default_rng(9)
    def inpaint(height, width):
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), bool)
        mask[height // 4:height // 2, width // 4:width // 2] = True
        assert inpainter.inpaint(image, mask).shape == image.shape
    assert inpainter.compiled_shapes() == 0
    inpaint(250, 250)
    inpaint(252, 255)  # the same 256x256 bucket
    inpaint(256, 241)
    assert inpainter.compiled_shapes() == 1
    inpaint(250, 300)  # 256x320
    assert inpainter.compiled_shapes() == 2


def test_gray_and_rgba_inputs(inpainter):
    image, mask, _ = _case('rocket256')
    gray = image[..., 1]
    out_gray = inpainter.inpaint(gray, mask)
    assert np.array_equal(out_gray, inpainter.inpaint(np.repeat(gray[..., None], 3, 2), mask))



def test_rgba_keeps_its_alpha_and_16_bits_stay_16_bits(inpainter):
    """RGBA in, RGBA out with the alpha unchanged; uint16 in, uint16 out with the known pixels
    exactly the input's and the fill the 8-bit network's times 257 (the network sees 8 bits).
    Before, alpha was dropped and uint16 refused (files: scaled to 8 bits)."""
    image, mask, _ = _case('rocket256')
    rgb = inpainter.inpaint(image, mask)
    alpha = np.random.default_rng(0).integers(0, 256, image.shape[:2] + (1,), dtype=np.uint8)
    rgba = inpainter.inpaint(np.concatenate([image, alpha], axis=2), mask)
    assert rgba.shape == image.shape[:2] + (4,) and rgba.dtype == np.uint8
    assert np.array_equal(rgba[..., :3], rgb) and np.array_equal(rgba[..., 3:], alpha)
    # 16-bit values no 8-bit file has, which scale back to the same 8 bits (100 / 257 < 0.5).
    deep = np.where(image < 255, image.astype(np.uint16) * 257 + 100, 65535).astype(np.uint16)
    out = inpainter.inpaint(deep, mask)
    assert out.dtype == np.uint16 and out.shape == image.shape
    assert np.array_equal(out[~mask], deep[~mask])
    assert np.array_equal(out[mask], rgb[mask].astype(np.uint16) * 257)
    deep_rgba = inpainter.inpaint(np.concatenate([deep, alpha.astype(np.uint16) * 300], axis=2), mask)
    assert np.array_equal(deep_rgba[..., :3], out) and np.array_equal(deep_rgba[..., 3:], alpha * np.uint16(300))
    original = inpainter.inpaint(np.concatenate([image, alpha], axis=2)[:250, :250], mask[:250, :250],
                                 original=True)
    assert original.shape == (248, 248, 4) and np.array_equal(original[..., 3:], alpha[:248, :248])


def test_mask_without_hole_returns_the_image(inpainter):
    image, _, _ = _case('motorcycle184x264')
    out = inpainter.inpaint(image, np.zeros(image.shape[:2], bool))
    assert np.array_equal(out, image) and out is not image


def test_mask_encodings_agree(inpainter):
    image, mask, _ = _case('motorcycle184x264')
    as_bool = inpainter.inpaint(image, mask)
    assert np.array_equal(inpainter.inpaint(image, mask.astype(np.uint8) * 255), as_bool)
    assert np.array_equal(inpainter.inpaint(image, mask.astype(np.float32)), as_bool)
    assert np.array_equal(inpainter.inpaint(image, np.repeat(mask[..., None] * 255, 3, 2).astype(np.uint8)), as_bool)


@pytest.mark.parametrize('restrict', [True, pytest.param(False, marks=pytest.mark.once)])
def test_batch_equals_single_runs_with_own_masks(inpainter, restrict):
    """Each image of a batch keeps its own mask and gets its single-image result (see
    `assert_batched_equals_single`: identical for the whole network on TensorFlow), as
    tests/test_batch.py requires of batch mode's files."""
    inpainter = Inpainter(inpainter.generator, restrict=restrict)
    image, mask, _ = _case('motorcycle184x264')
    other_mask = np.zeros_like(mask)
    other_mask[10:60, 100:200] = True
    images = [image, image[::-1].copy(), image[:101, :77].copy(), image[50:151, 100:177].copy()]
    masks = [mask, other_mask, mask[:101, :77], other_mask[:101, :77]]
    batch = inpainter.inpaint_batch(images, masks)
    for got, im, m in zip(batch, images, masks):
        assert_batched_equals_single(got, inpainter.inpaint(im, m), whole_network=not restrict)


@pytest.mark.parametrize('image,mask,match', [
    (np.zeros((0, 5, 3), np.uint8), np.zeros((0, 5), bool), 'no pixels'),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), bool), 'mask is 9x8 but the image is 8x8'),
    (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), bool), 'uint8'),
    (np.zeros((8, 8, 3), np.int32), np.zeros((8, 8), bool), 'pixels are int32'),
    (np.zeros((8, 8, 2), np.uint8), np.zeros((8, 8), bool), 'not an image'),
])
def test_bad_inputs(inpainter, image, mask, match):
    with pytest.raises(InputError, match=match):
        inpainter.inpaint(image, mask)


def test_tiny_images_do_not_leak_keras_softmax_warning(inpainter):
    """An 8x8 image has one attention key; Keras warned "softmax over axis -1 ... size 1" from
    inside the model (the softmax of one key is 1, written out now)."""
    import warnings
    image, hole = np.full((8, 8, 3), 90, np.uint8), np.zeros((8, 8), bool)
    hole[2:5, 3:6] = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        out = inpainter.inpaint(image, hole)
        inpainter.predict(to_network(image[None]), hole[None, :, :, None].astype(np.float32))
    assert not [w for w in caught if 'softmax' in str(w.message)], [str(w.message) for w in caught]
    assert out.shape == (8, 8, 3) and np.array_equal(out[~hole], image[~hole])


RGB_16 = np.full((16, 24, 3), 128, np.uint8)
HOLES_16 = np.zeros((16, 24), bool)
HOLES_16[4:8, 8:16] = True


@pytest.mark.parametrize('image, mask, words', [
    (to_network(RGB_16), HOLES_16[None, :, :, None], ['shape (16, 24, 3) (one image needs the batch '
                                                       'axis: image[None])']),
    (RGB_16[None], HOLES_16[None, :, :, None], ['image_bgr is uint8, not floats in [-1, 1]']),
    (RGB_16[None].astype(np.float32), HOLES_16[None, :, :, None], ['values in [128, 128], not [-1, 1]']),
    (to_network(RGB_16[None]), HOLES_16, ['mask has shape (16, 24) for image_bgr (1, 16, 24, 3) (a (H, '
                                          'W) mask: mask[None, :, :, None])']),
    (to_network(RGB_16[None]), HOLES_16[None, :, :, None] * np.float32(255), ['not 0 and 1']),
    (to_network(np.zeros((1, 12, 24, 3), np.uint8)), np.zeros((1, 12, 24, 1)), ['24x12 (W x H), not '
                                                                               'multiples of 8']),
])
def test_predict_says_what_it_takes(inpainter, image, mask, words):
    """A 3-D image, a uint8 batch, a 2-D mask: one line naming what `predict` expects (before,
    "needs H and W multiples of 8, got (256, 384, 3)", garbage for uint8, a graph traceback)."""
    with pytest.raises(InputError) as error:
        inpainter.predict(image, mask)
    message = str(error.value)
    assert all(word in message for word in words) and '\n' not in message, message
    assert message.endswith('predict takes image_bgr float32 (B, H, W, 3), BGR in [-1, 1] '
                            '(to_network(rgb[None]) of uint8 RGB), and mask (B or 1, H, W, 1) of 0 and 1 '
                            '(1 = hole), H and W multiples of 8; Inpainter.inpaint takes uint8 images '
                            'and masks of any size'), message


def test_original_mode_rejects_images_smaller_than_the_grid(inpainter):
    with pytest.raises(InputError, match='smaller than 8x8'):
        inpainter.inpaint(np.zeros((7, 20, 3), np.uint8), np.ones((7, 20), bool), original=True)


def _crop_and_hole():
    image = read_image(golden_case('rocket256')['input'])[96:160, 80:160]
    hole = np.zeros(image.shape[:2], bool)
    hole[20:44, 24:56] = True
    return np.ascontiguousarray(image), hole


@pytest.mark.parametrize('encode', [
    lambda hole: hole.astype(np.uint8),                                          # 0/1
    lambda hole: hole.astype(np.uint8) * 255,                                    # 0/255
    lambda hole: np.stack([hole * 255, 0 * hole, 0 * hole], 2).astype(np.uint8),  # red, RGB
    lambda hole: np.stack([0 * hole, 0 * hole, hole * 1], 2).astype(np.uint8),    # 0/1 in blue
    lambda hole: np.stack([0 * hole] * 3 + [hole * 255], 2).astype(np.uint8),     # painted alpha
    lambda hole: hole.astype(np.float32),
], ids=['0_1', '0_255', 'red', 'blue_0_1', 'alpha', 'float'])
def test_api_masks_follow_the_files_rule(inpainter, encode):
    image, hole = _crop_and_hole()
    np.testing.assert_array_equal(inpainter.inpaint(image, encode(hole)), inpainter.inpaint(image, hole))


def test_grey_in_grey_out(inpainter):
    """Gray (H, W) and equal-channel RGB inputs get grey fills; a colour input keeps colour."""
    colour, hole = _crop_and_hole()
    grey = np.rint(colour.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).astype(np.uint8)
    results = inpainter.inpaint_batch([grey, colour, np.repeat(grey[..., None], 3, 2)], [hole] * 3)
    for result in (results[0], results[2]):
        assert result.shape == colour.shape
        assert np.array_equal(result[..., 0], result[..., 1])
        assert np.array_equal(result[..., 1], result[..., 2])
        assert np.array_equal(result[~hole, 0], grey[~hole])
        assert np.mean(result[hole, 0] != grey[hole]) > 0.5  # filled
    np.testing.assert_array_equal(results[0], results[2])
    filled = results[1][hole]
    assert np.any(filled[:, 0] != filled[:, 1])  # the network's fill has colour: the test can fail


def test_grey_if_grey_is_the_luminance():
    images = np.zeros((2, 1, 2, 3), np.uint8)
    images[1, 0, 0] = [1, 2, 3]  # a colour image
    filled = np.array([[[[255, 0, 0], [10, 20, 200]]]] * 2, np.uint8)
    got = grey_if_grey(images, filled)
    np.testing.assert_array_equal(got[0, 0, :, 0], [76, 38])  # 0.299*255 = 76.2; 2.99+11.74+22.8 = 37.5
    np.testing.assert_array_equal(got[0], np.repeat(got[0, ..., :1], 3, -1))
    np.testing.assert_array_equal(got[1], filled[1])


@pytest.mark.parametrize('size, hole', [(256, (64, 192)),
                                        pytest.param(512, (200, 260), marks=pytest.mark.once)])
def test_bfloat16_inference_is_close_to_float32(size, hole):
    """`precision='bfloat16'` (convolutions in bfloat16, attention in float32) on the whole network
    (256 px: the restricted path does not pay) and on the restricted one (512 px, small hole):
    the hole within 35 dB PSNR of float32's (bfloat16 keeps 8 bits of mantissa; 40-45 dB is what
    benchmarks/hole_attention.py measures), known pixels untouched."""
    checkpoint = os.path.join(REPO, 'checkpoints', 'default')
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), bool)
    mask[hole[0]:hole[1], hole[0]:hole[1]] = True
    reference = Inpainter.from_checkpoint(checkpoint).inpaint(image, mask).astype(float)
    inpainter = Inpainter.from_checkpoint(checkpoint, precision='bfloat16')
    result = inpainter.inpaint(image, mask).astype(float)
    assert inpainter.restricted.last_path == ('dense' if size == 256 else 'restricted')
    assert np.array_equal(result[~mask], image[~mask])
    mse = np.mean((result[mask] - reference[mask]) ** 2)
    assert 0 < mse and 10 * np.log10(255 ** 2 / mse) > 35


def test_unknown_precision_is_an_error(golden_models):
    with pytest.raises(ValueError, match='precision'):
        Inpainter(golden_models[0], precision='float16')
