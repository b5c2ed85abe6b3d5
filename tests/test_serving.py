"""inpaint/serving.py: each graph twin against the library's NumPy rule on every case the rule
distinguishes, and the serving model against `Inpainter(restrict=False)`, on any backend (the
golden generators, width 8, unguided and guided; images of 37x45 px). The exported artifacts are
checked in test_export.py."""
import numpy as np
import pytest
from keras import ops

from inpaint import serving
from inpaint.imageio import edge_lines, mask_holes
from inpaint.inference import Inpainter, grey_if_grey, padded_size

HEIGHT, WIDTH = 37, 45


def masks_of_every_kind():
    """uint8 (H, W, C) masks, one per case of `imageio.mask_holes`, C = 1 to 4."""
    rng = np.random.default_rng(0)
    hole = np.zeros((HEIGHT, WIDTH), bool)
    hole[9:20, 12:30] = True
    noise = rng.integers(0, 21, hole.shape).astype(np.uint8)
    alpha = np.where(hole, 255, 0).astype(np.uint8)
    opaque = np.full(hole.shape, 255, np.uint8)
    colour = np.zeros(hole.shape + (3,), np.uint8)
    colour[hole, 1] = 140  # green strokes on black
    return {
        'zero': np.zeros(hole.shape + (1,), np.uint8),
        '0/1': hole.astype(np.uint8)[..., None],
        'top 2 (no hole)': (hole * np.uint8(2))[..., None],
        '0/255, JPEG noise': np.where(hole, 255 - noise, noise)[..., None],
        'gray + painted alpha': np.stack([np.zeros_like(alpha), alpha], -1),
        'gray + opaque alpha': np.stack([hole * np.uint8(255), opaque], -1),
        'colour strokes': colour,
        'black paint on transparent': np.concatenate([np.zeros_like(colour), alpha[..., None]], -1),
        'colour + opaque alpha': np.concatenate([colour, opaque[..., None]], -1),
        'colour 0/1 + opaque alpha': np.concatenate([colour > 0, opaque[..., None]], -1).astype(np.uint8),
    }


@pytest.mark.parametrize('kind', sorted(masks_of_every_kind()))
def test_mask_holes_twin_follows_the_one_rule(kind):
    mask = masks_of_every_kind()[kind]
    got = ops.convert_to_numpy(serving.mask_holes(mask[None]))
    assert got.shape == (1, HEIGHT, WIDTH, 1)
    np.testing.assert_array_equal(got[0, ..., 0] == 1, mask_holes(mask))


def test_mask_holes_twin_decides_per_image():
    """A 0/1 mask next to a 0/255 one and an empty one: each image's own values decide."""
    masks = masks_of_every_kind()
    batch = np.stack([masks['0/1'], masks['0/255, JPEG noise'], masks['zero']])
    got = ops.convert_to_numpy(serving.mask_holes(batch))[..., 0] == 1
    np.testing.assert_array_equal(got, np.stack([mask_holes(m) for m in batch]))


def test_grey_twin_follows_the_grey_rule():
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    grey = np.repeat(colour[..., :1], 3, axis=-1)
    almost = grey.copy()
    almost[5, 7, 2] ^= 1  # one value off: not grey
    images = np.stack([colour, grey, almost])
    filled = rng.integers(0, 256, images.shape, dtype=np.uint8)
    got = serving.grey_if_grey(images.astype(np.float32), filled.astype(np.float32))
    np.testing.assert_array_equal(ops.convert_to_numpy(got), grey_if_grey(images, filled))


def test_padded_size_twin_equals_the_library_below_and_at_every_bucket_edge():
    sides = list(range(1, 65)) + [n + d for n in serving.PADDED_SIZES.tolist() for d in (-1, 0, 1)]
    sides = sorted({n for n in sides if 1 <= n <= 2 ** 20})
    got = [int(ops.convert_to_numpy(serving.padded_size(ops.convert_to_tensor(n, 'int32'))))
           for n in sides]
    assert got == [padded_size(n) for n in sides]


def test_serving_model_is_the_library_on_the_whole_network(golden_models):
    """Each image with its own mask, one of them grey: the inpainted output is Inpainter's (up to
    a rounding flip on a few values: the graph and the compiled forward sum in other orders)."""
    rng = np.random.default_rng(2)
    masks = masks_of_every_kind()
    colour = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    grey = np.repeat(colour[..., 1:2], 3, axis=-1)
    images = np.stack([colour, grey])
    batch_masks = np.stack([masks['0/1'], np.roll(masks['0/255, JPEG noise'], 7, axis=1)])
    generator = golden_models[0]
    outputs = serving.ServingModel(generator)(images, batch_masks)
    got = ops.convert_to_numpy(outputs['inpainted'])
    assert got.dtype == np.uint8 and got.shape == images.shape
    assert ops.convert_to_numpy(outputs['x_stage2']).shape == images.shape
    library = Inpainter(generator, restrict=False)
    for image, mask, result in zip(images, batch_masks, got):
        want = library.inpaint(image, mask)
        diff = np.abs(result.astype(int) - want)
        assert diff.max() <= 1 and np.count_nonzero(diff) <= 3, (diff.max(), np.count_nonzero(diff))
        assert np.array_equal(result[~mask_holes(mask)], image[~mask_holes(mask)])


def edges_of_every_kind():
    """uint8 (H, W, C) edge images: the mask encodings (each case of the shared `_ink` rule) and
    ramps over every value 0..255, in grey and as a painted alpha (the threshold's boundary)."""
    ramp = (np.arange(HEIGHT * WIDTH) % 256).astype(np.uint8).reshape(HEIGHT, WIDTH)
    kinds = dict(masks_of_every_kind())
    kinds['grey ramp'] = ramp[..., None]
    kinds['alpha ramp on black'] = np.stack([np.zeros_like(ramp)] * 3 + [ramp], -1)
    return kinds


@pytest.mark.parametrize('threshold', [0.6, 0.2])
def test_edge_lines_twin_follows_the_one_rule(threshold):
    """Every kind, at the original's threshold and at 0.2 (where 51 is a line by the graph's
    product `x * float32(1/255)`, not by a true division)."""
    for kind, edge in edges_of_every_kind().items():
        got = ops.convert_to_numpy(serving.edge_lines(edge[None], threshold))
        assert got.shape == (1, HEIGHT, WIDTH, 1), kind
        np.testing.assert_array_equal(got[0, ..., 0] == 1, edge_lines(edge, threshold), err_msg=kind)


def test_guided_serving_model_is_the_library_with_each_images_edge(guided_models, golden_models):
    """Each image with its own mask and edge (lines across the hole, painted or grey; one with
    none): the inpainted output is Inpainter's, and the lines change it."""
    rng = np.random.default_rng(3)
    masks = masks_of_every_kind()
    images = rng.integers(0, 256, (3, HEIGHT, WIDTH, 3), dtype=np.uint8)
    batch_masks = np.stack([masks['0/1'], masks['0/255, JPEG noise'], masks['0/1']])
    lines = np.zeros((HEIGHT, WIDTH), bool)
    lines[5:25, 20] = lines[14, 8:40] = True  # a cross over the hole (rows 9-19, columns 12-29)
    painted = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    painted[lines, 3] = 255
    grey = np.repeat((lines * np.uint8(255))[..., None], 4, axis=-1)
    grey[..., 3] = 255  # an opaque alpha says nothing: the colour counts
    edges = np.stack([painted, grey, np.zeros_like(painted)])
    generator = guided_models[0]
    got = ops.convert_to_numpy(serving.ServingModel(generator)(images, batch_masks, edges)['inpainted'])
    library = Inpainter(generator, restrict=False)
    for image, mask, edge, result in zip(images, batch_masks, edges, got):
        want = library.inpaint(image, mask, edge)
        diff = np.abs(result.astype(int) - want)
        assert diff.max() <= 1 and np.count_nonzero(diff) <= 3, (diff.max(), np.count_nonzero(diff))
    assert not np.array_equal(got[0], library.inpaint(images[0], batch_masks[0]))
    with pytest.raises(ValueError, match='not guided'):
        serving.ServingModel(golden_models[0])(images, batch_masks, edges)
