"""The hole-restricted generator (`inpaint.restricted`, `inpaint.hole_attention`) against the dense
computation: the attention alone on random features, and the whole generator at full width.

Tolerances. The attention's restricted and dense results are sums of the same terms in nearly
the same order, so they agree to float32 rounding of the pasted values (1e-5 relative to the
largest). For the whole network, the restricted path runs every stage on other shapes (crops,
fewer score rows), so each conv and matmul rounds differently: its difference from the dense
network is judged against the dense network's own response to moving every weight by float32
rounding, measured in the same test (`_rounding_sensitivity`): at most twice it, as the golden
README defines "reproduced" for such cases (at once was too tight: on an AVX2-only EPYC the
'each_border_and_corner' case came to 1.16x and the batch to 1.01x of the worst of three draws).
A wrong result (a missing query, key or denominator term, a shifted crop) differs by the size of
the signal, orders of magnitude more.
"""
import keras
import numpy as np
import pytest

from conftest import perturbed_weights, to_numpy
from inpaint import restricted as restricted_module
from inpaint.backends import bucket
from inpaint.generator import build_generator
from inpaint.hole_attention import attend, neighbour, plan_attention
from inpaint.inference import Inpainter, to_network
from inpaint.layers import BlockedAttention, ContextualAttention
from inpaint.masks import brush_stroke_mask


# ---------- the attention alone ----------

def _features(h, w, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((1, 2 * h, 2 * w, channels)).astype(np.float32)


def _dense_patches(layer, features, mask):
    inputs = layer.prepare(features, features, mask)
    _, patches = BlockedAttention(layer, inputs.fp, inputs.wn, inputs.mm, inputs.raw,
                                  inputs.small).run()
    return inputs, to_numpy(patches)[0]


ATTENTION_CASES = {
    'box': lambda h, w: _box_mask(h, w, (h // 3, 2 * h // 3), (w // 4, w // 2)),
    'top_left_corner': lambda h, w: _box_mask(h, w, (0, 3), (0, 4)),
    'bottom_right_corner': lambda h, w: _box_mask(h, w, (h - 2, h), (w - 5, w)),
    'left_and_right_borders': lambda h, w: _box_mask(h, w, (0, h), (0, 2))
                                           | _box_mask(h, w, (2, 5), (w - 1, w)),
    'nearly_everything': lambda h, w: ~_box_mask(h, w, (0, 1), (0, w)),
    'everything': lambda h, w: np.ones((h, w), bool),
    'no_key_masked': lambda h, w: np.zeros((h, w), bool),
}


def _box_mask(h, w, rows, cols):
    mask = np.zeros((h, w), bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


@pytest.mark.parametrize('fuse', [True, False])
@pytest.mark.parametrize('case', sorted(ATTENTION_CASES))
def test_attention_matches_dense_at_needed_queries(case, fuse):
    h, w = 9, 13  # not square, odd: the column-major wrap and both borders matter
    layer = ContextualAttention(fuse=fuse)
    holes = ATTENTION_CASES[case](h, w)
    features = _features(h, w)
    mask = np.repeat(np.repeat(holes, 2, 0), 2, 1)[None, :, :, None].astype(np.float32)
    inputs, dense = _dense_patches(layer, features, mask)
    rng = np.random.default_rng(1)
    needed = rng.random((h, w)) < 0.4  # any set of queries, including scattered ones
    needed[0, 0] = needed[-1, -1] = True
    plan = plan_attention(needed, to_numpy(inputs.mm)[0, 0], fuse=fuse, chunk_bytes=4 * 64 * 8)
    patches = to_numpy(attend(inputs.fp, inputs.wn, inputs.raw, plan)).reshape(h * w, -1)
    scale = np.abs(dense).max() + 1e-30
    np.testing.assert_allclose(patches[needed.reshape(-1)], dense[needed.reshape(-1)],
                               atol=1e-5 * scale, rtol=0)
    assert not patches[~needed.reshape(-1)].any()  # queries not needed are left zero


@pytest.mark.once  # the chunking is slicing: the same on every backend (attend's numerics: above)
def test_attention_chunks_and_padding_do_not_change_the_result():
    h, w = 12, 10
    layer = ContextualAttention()
    holes = _box_mask(h, w, (3, 8), (2, 6))
    features = _features(h, w, seed=3)
    mask = np.repeat(np.repeat(holes, 2, 0), 2, 1)[None, :, :, None].astype(np.float32)
    inputs, dense = _dense_patches(layer, features, mask)
    needed = np.ones((h, w), bool)
    results = []
    for chunk_bytes in (1, 4 * 2**20):  # 64-query chunks (the smallest) vs one chunk
        plan = plan_attention(needed, to_numpy(inputs.mm)[0, 0], chunk_bytes=chunk_bytes)
        results.append(to_numpy(attend(inputs.fp, inputs.wn, inputs.raw, plan))
                       .reshape(h * w, -1))
    assert len(plan_attention(needed, to_numpy(inputs.mm)[0, 0], chunk_bytes=1).chunks) == 2
    np.testing.assert_allclose(results[0], results[1], atol=1e-6 * np.abs(dense).max(), rtol=0)
    np.testing.assert_allclose(results[0], dense, atol=1e-5 * np.abs(dense).max(), rtol=0)


def test_neighbour_follows_both_flattening_orders():
    h, w = 3, 4
    grid = np.arange(h * w)
    # Column-major order of a 3x4 grid: (0,0) (1,0) (2,0) (0,1) ...: (2,0) -> (0,1), (0,1) -> (2,0).
    assert neighbour(np.array([8]), 1, 0, h, w)[0] == 1
    assert neighbour(np.array([1]), -1, 0, h, w)[0] == 8
    assert neighbour(np.array([0]), -1, 0, h, w)[0] == h * w  # before the first: none
    assert neighbour(np.array([11]), 1, 0, h, w)[0] == h * w  # after the last: none
    assert np.array_equal(neighbour(grid, 0, 1, h, w)[:-1], grid[1:])  # row-major: next index
    assert neighbour(grid, 0, 1, h, w)[-1] == h * w
    assert neighbour(np.array([h * w]), 0, 0, h, w)[0] == h * w  # none stays none


def test_bucket_sizes():
    sizes = np.arange(1, 5000)
    buckets = np.array([bucket(n) for n in sizes])
    assert np.all(buckets >= sizes) and np.all(buckets - sizes <= sizes / 8 + 1)
    assert len(set(buckets[(sizes > 1024) & (sizes <= 2048)])) <= 8


# ---------- the whole generator, full width, random weights ----------

@pytest.fixture(scope='module')
def full_width():
    keras.utils.set_random_seed(0)
    inpainter = Inpainter(build_generator(48))
    inpainter.restricted.cost_limit = np.inf  # always restrict here, to compare it
    return inpainter


def _rounding_sensitivity(inpainter, x, mask, holes, draws=3):
    """The dense x_stage2, and the max and mean |change| at the holes when every weight moves by
    float32 rounding (`perturbed_weights`, the largest of a few draws): the size of a difference
    that summation order alone makes."""
    base = inpainter.predict_offsets(x, mask)[1]
    changes = []
    for seed in range(draws):
        with perturbed_weights(inpainter.generator, seed=seed):
            changes.append(np.abs(inpainter.predict_offsets(x, mask)[1] - base)[holes])
    return base, max(c.max() for c in changes), max(c.mean() for c in changes)


def _strokes(h, w, seed):
    return brush_stroke_mask(h, w, np.random.default_rng(seed)).astype(bool)


GENERATOR_CASES = {
    'box': (1, 256, 256, lambda h, w: _box_mask(h, w, (60, 130), (90, 170))[None]),
    'strokes': (1, 256, 256, lambda h, w: _strokes(h, w, 2)[None]),
    'each_border_and_corner': (1, 200, 264, lambda h, w: (
        _box_mask(h, w, (0, 9), (0, 15)) | _box_mask(h, w, (h - 7, h), (w - 20, w))
        | _box_mask(h, w, (90, 110), (0, 6)) | _box_mask(h, w, (0, 5), (120, 150))
        | _box_mask(h, w, (h - 3, h), (40, 70)) | _box_mask(h, w, (100, 140), (w - 9, w)))[None]),
    'nearly_everything': (1, 192, 192, lambda h, w: (~_box_mask(h, w, (0, 8), (0, 8)))[None]),
    'batch_of_different_masks': (3, 192, 256, lambda h, w: np.stack([
        _box_mask(h, w, (20, 50), (30, 90)), _strokes(h, w, 5),
        _box_mask(h, w, (150, 192), (200, 256)) | _box_mask(h, w, (0, 16), (0, 16))])),
}


@pytest.mark.full_width
@pytest.mark.parametrize('case', sorted(GENERATOR_CASES))
def test_restricted_generator_matches_dense_at_the_holes(full_width, case):
    batch, h, w, make = GENERATOR_CASES[case]
    holes = make(h, w)
    rng = np.random.default_rng(7)
    x = to_network(rng.integers(0, 256, (batch, h, w, 3), dtype=np.uint8))
    mask = holes[..., None].astype(np.float32)
    dense, worst, typical = _rounding_sensitivity(full_width, x, mask, holes)
    restricted = full_width.restricted(x, holes)
    assert full_width.restricted.last_path == 'restricted'
    difference = np.abs(restricted - dense)[holes]
    assert difference.max() <= 2 * worst and difference.mean() <= 2 * typical, (
        f'restricted vs dense {difference.max():.3g} (mean {difference.mean():.3g}); weights '
        f'moved by rounding move the dense output {worst:.3g} (mean {typical:.3g})')


@pytest.mark.full_width
def test_cropped_stages_with_dense_attention_match_dense(full_width, monkeypatch):
    """Where the needed queries are most of them, the cropped stages run the dense attention."""
    monkeypatch.setattr(restricted_module, 'ATTENTION_LIMIT', 0.0)
    batch, h, w, make = GENERATOR_CASES['batch_of_different_masks']
    holes = make(h, w)
    x = to_network(np.random.default_rng(8).integers(0, 256, (batch, h, w, 3), dtype=np.uint8))
    dense, worst, typical = _rounding_sensitivity(full_width, x, holes[..., None].astype(np.float32),
                                                  holes)
    staged = full_width.restricted(x, holes)
    assert full_width.restricted.last_path == 'restricted convolutions, dense attention'
    difference = np.abs(staged - dense)[holes]
    assert difference.max() <= 2 * worst and difference.mean() <= 2 * typical


@pytest.mark.full_width
def test_inpaint_is_the_dense_inpaint_at_odd_sizes(full_width):
    """Through `Inpainter.inpaint` (padding, rounding, composite): equal bytes but for values
    that rounding puts on the other side of .5, at most one grey level."""
    dense = Inpainter(full_width.generator, restrict=False)
    rng = np.random.default_rng(11)
    for h, w in ((250, 301), (131, 207)):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = _box_mask(h, w, (h // 3, h // 2), (w // 5, w // 2)) | _strokes(h, w, h)
        restricted = full_width.inpaint(image, mask).astype(int)
        expected = dense.inpaint(image, mask).astype(int)
        assert np.array_equal(restricted[~mask], image[~mask])
        assert np.abs(restricted - expected).max() <= 1
        assert (restricted != expected).mean() < 1e-3


@pytest.mark.once  # the plan is NumPy, made before any stage runs
def test_falls_back_to_dense_where_restriction_cannot_win():
    keras.utils.set_random_seed(0)
    inpainter = Inpainter(build_generator(48))
    rng = np.random.default_rng(0)
    x = to_network(rng.integers(0, 256, (1, 256, 256, 3), dtype=np.uint8))
    holes = np.ones((1, 256, 256), bool)  # every stage needs the whole image
    inpainter.restricted(x, holes)
    assert inpainter.restricted.last_path == 'dense'
    assert inpainter.restricted.compiled_shapes() == 0  # decided before any stage ran


@pytest.mark.full_width
def test_restricted_stages_compile_once_per_box_shape(full_width):
    if keras.backend.backend() == 'torch':
        pytest.skip('the torch backend runs eagerly: nothing is compiled')
    rng = np.random.default_rng(3)
    x = to_network(rng.integers(0, 256, (1, 512, 512, 3), dtype=np.uint8))
    holes = np.zeros((1, 512, 512), bool)
    holes[0, 200:220, 200:230] = True
    full_width.restricted(x, holes)
    compiled = full_width.restricted.compiled_shapes()
    holes = np.roll(holes, (40, 32), axis=(1, 2))  # the same hole elsewhere: the same boxes
    full_width.restricted(x, holes)
    assert full_width.restricted.compiled_shapes() == compiled


# ---------- the reach: derived from the layers, exactly ----------

def _one_pixel_beyond(reach):
    """A pixel just outside the reach (on its bounding box's border) and one just inside."""
    rows, cols = np.nonzero(reach)
    inside = (rows.min(), cols[rows == rows.min()].min())
    outside = (rows.min() - 1, inside[1]) if rows.min() > 0 else (rows.max() + 1, cols.min())
    return outside, inside


@pytest.mark.parametrize('stage', ['coarse', 'coarse_decode', 'hallucinate', 'decode'])
def test_reach_is_what_changes_the_needed_outputs(stage):
    """Changing any input outside a stage's reach leaves its needed outputs unchanged; changing
    one input just inside the reach's edge changes them (the reach is not too large either)."""
    keras.utils.set_random_seed(1)
    generator = build_generator(8)
    size = 160
    needed = np.zeros((size, size), bool)
    needed[70:76, 80:83] = True
    if stage == 'coarse':
        reach, shape = generator.stage1_reach(needed), (1, size, size, 3)
        run = lambda x: generator.coarse(x, np.zeros((1, size, size, 1), np.float32))
        outputs = needed
    elif stage == 'coarse_decode':
        reach, shape = generator.coarse_decode_reach(needed), (1, size // 4, size // 4, 16)
        run = generator.coarse_decode
        outputs = needed
    elif stage == 'hallucinate':
        outputs = needed[::4, ::4]  # the branch's output grid
        reach, shape = generator.hallucination_reach(outputs, (size, size)), (1, size, size, 3)
        run = generator.hallucinate
    else:
        reach, shape = generator.attention_reach(needed), (1, size // 4, size // 4, 16)
        hallucinated = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        run = lambda attended: generator.decode(hallucinated, attended)
        outputs = needed
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    base = to_numpy(run(x))[0][outputs]
    changed = x.copy()
    changed[0][~reach] = rng.standard_normal(((~reach).sum(), shape[-1]))
    np.testing.assert_allclose(to_numpy(run(changed))[0][outputs], base, rtol=0,
                               atol=1e-6 * np.abs(base).max())
    _, inside = _one_pixel_beyond(reach)
    changed = x.copy()
    changed[0][inside] += 10.0
    assert np.abs(to_numpy(run(changed))[0][outputs] - base).max() > 1e-4 * np.abs(base).max()
