"""Tests for inpaint/masks.py: the original's training masks and the evaluation families."""
import json
import math
import os

import numpy as np
import pytest

from inpaint import masks

GOLDEN = os.path.join(os.path.dirname(__file__), 'data', 'mask_stats_256.json')
# The original inpaint.yml: img_shapes 256x256, height = width = 128, margins 0, max_delta 32.
TRAIN = dict(height=128, width=128, vertical_margin=0, horizontal_margin=0,
             max_delta_height=32, max_delta_width=32)


def _box(h, w, rng, p=TRAIN):
    bbox = masks.random_bbox(h, w, p['height'], p['width'], p['vertical_margin'],
                             p['horizontal_margin'], rng)
    return masks.bbox_to_mask(bbox, h, w, p['max_delta_height'], p['max_delta_width'], rng)


def _bounds(mask):
    """(top, bottom, left, right) of the hole pixels, bottom/right exclusive."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


# ---------------------------------------------------------------------------------------------
# Coverage against the original generators (golden/README.md: within 0.02).

@pytest.mark.parametrize('kind', ['box', 'brush', 'combined'])
def test_coverage_matches_original(kind):
    with open(GOLDEN) as handle:
        golden = json.load(handle)[kind]
    rng = np.random.default_rng(2024)
    make = {
        'box': lambda: _box(256, 256, rng),
        'brush': lambda: masks.brush_stroke_mask(256, 256, rng),
        'combined': lambda: masks.training_mask(256, 256, rng=rng, **TRAIN),
    }[kind]
    coverage = np.array([masks.hole_fraction(make()) for _ in range(golden['n'])])
    tol = 0.02  # the stated tolerance of golden/README.md
    assert abs(coverage.mean() - golden['mean']) < tol
    for q in ('5', '50', '95'):
        assert abs(np.percentile(coverage, int(q)) - golden['percentiles'][q]) < tol, q


# ---------------------------------------------------------------------------------------------
# Box.

def test_random_bbox_upper_bound_is_exclusive():
    rng = np.random.default_rng(0)
    # top in [1, 10 - 1 - 6) = {1, 2}; left in [2, 12 - 2 - 5) = {2, 3, 4}.
    boxes = {masks.random_bbox(10, 12, 6, 5, 1, 2, rng) for _ in range(300)}
    assert {b[0] for b in boxes} == {1, 2}
    assert {b[1] for b in boxes} == {2, 3, 4}
    assert {b[2:] for b in boxes} == {(6, 5)}


def test_random_bbox_without_room_fails():
    with pytest.raises(ValueError, match='does not fit'):
        masks.random_bbox(256, 256, 128, 128, 64, 0, np.random.default_rng(0))


def test_training_box_geometry():
    rng = np.random.default_rng(1)
    heights, widths = set(), set()
    for _ in range(500):
        box = _box(256, 256, rng)
        assert box.dtype == np.float32 and box.shape == (256, 256)
        top, bottom, left, right = _bounds(box)
        assert box[top:bottom, left:right].all() and box.sum() == (bottom - top) * (right - left)
        heights.add(bottom - top)
        widths.add(right - left)
        assert 0 <= top and bottom <= 256 and 0 <= left and right <= 256
    # Both sides of a dimension shrink by the same 0..16, all values occur: sides 96, 98, ..., 128.
    assert heights == widths == set(range(128 - 2 * 16, 129, 2))


# ---------------------------------------------------------------------------------------------
# Brush.

class _RecordingRng:
    """Wraps a Generator and records every draw as (method, args)."""

    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)
        self.calls = []

    def __getattr__(self, name):
        method = getattr(self._rng, name)

        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return method(*args, **kwargs)
        return record


@pytest.mark.parametrize('seed', range(5))
def test_brush_draws_in_the_original_order(seed):
    h, w = 200, 300
    rng = _RecordingRng(seed)
    masks.brush_stroke_mask(h, w, rng)
    calls = list(rng.calls)
    mean = math.sqrt(h * h + w * w) / 8

    name, args, _ = calls.pop(0)
    assert (name, args) == ('integers', (1, 4))
    strokes = 0
    while len(calls) > 2:
        strokes += 1
        name, args, _ = calls.pop(0)
        assert (name, args) == ('integers', (4, 12))
        for _ in range(2):
            name, args, _ = calls.pop(0)
            assert name == 'uniform' and args == (0, 2 * math.pi / 15)
        num_vertex = 0
        while calls[0][0] == 'uniform':
            calls.pop(0)
            num_vertex += 1
        assert 4 <= num_vertex <= 11
        assert [c[:2] for c in calls[:2]] == [('integers', (0, w)), ('integers', (0, h))]
        del calls[:2]
        for _ in range(num_vertex):
            name, _, kwargs = calls.pop(0)
            assert name == 'normal' and kwargs == {'loc': mean, 'scale': mean // 2}
        name, args, _ = calls.pop(0)
        assert (name, args) == ('uniform', (12, 40))
    assert 1 <= strokes <= 3
    # The original's no-op flips still draw twice.
    assert [c[:2] for c in calls] == [('normal', ()), ('normal', ())]


def test_stroke_geometry():
    rng = np.random.default_rng(3)
    h, w = 200, 300
    mean = math.sqrt(h * h + w * w) / 8
    counts, widths = set(), set()
    for _ in range(400):
        vertices, width = masks._stroke(h, w, mean, rng)
        counts.add(len(vertices) - 1)
        widths.add(width)
        assert vertices.min() >= 0 and vertices[:, 0].max() <= w and vertices[:, 1].max() <= h
        steps = np.hypot(*np.diff(vertices, axis=0).T)
        assert steps.max() <= 2 * mean + math.sqrt(2)  # clipped to 2*mean, then truncated to ints
    assert counts == set(range(4, 12))
    assert widths == set(range(12, 40))


def test_brush_mask_values():
    rng = np.random.default_rng(4)
    for _ in range(50):
        mask = masks.brush_stroke_mask(256, 256, rng)
        assert mask.dtype == np.float32 and mask.shape == (256, 256)
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert 0 < mask.sum() < mask.size


def test_stroke_drawing_matches_pil():
    """`_draw_stroke` against PIL's line + ellipse, which the original draws with."""
    image_module = pytest.importorskip('PIL.Image')
    draw_module = pytest.importorskip('PIL.ImageDraw')
    rng = np.random.default_rng(5)
    h, w = 256, 256
    ours_total = pil_total = differ = 0
    for _ in range(100):
        vertices, width = masks._stroke(h, w, math.sqrt(h * h + w * w) / 8, rng)
        ours = np.zeros((h, w), np.uint8)
        masks._draw_stroke(ours, vertices, width)
        image = image_module.new('L', (w, h), 0)
        draw = draw_module.Draw(image)
        points = [(int(x), int(y)) for x, y in vertices]
        draw.line(points, fill=1, width=width)
        r = width // 2
        for x, y in points:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=1)
        pil = np.asarray(image)
        ours_total += int(ours.sum())
        pil_total += int(pil.sum())
        differ += int((ours != pil).sum())
    # Measured: 0.5% more pixels than PIL, disagreement 1.4% of PIL's pixels (0.1% of the image);
    # cv2.line with thickness=width alone would give ~3% more.
    assert abs(ours_total / pil_total - 1) < 0.01
    assert differ / pil_total < 0.025


def test_brush_covers_the_width_of_non_square_images():
    # The original's `h, w = mask.size` swaps the axes; ours must reach the far columns of wide images.
    rng = np.random.default_rng(6)
    h, w = 200, 300
    union = np.zeros((h, w), bool)
    for _ in range(100):
        union |= masks.brush_stroke_mask(h, w, rng) > 0
    assert union[:, 260:].any() and union[180:, :].any()
    # Spread evenly: the right third is hit about as often as the left third.
    assert union[:, 200:].mean() > 0.5 * union[:, :100].mean()


def test_training_mask_is_union_of_box_and_brush():
    for seed in range(5):
        mask = masks.training_mask(256, 256, rng=np.random.default_rng(seed), **TRAIN)
        rng = np.random.default_rng(seed)
        box = _box(256, 256, rng)
        brush = masks.brush_stroke_mask(256, 256, rng)
        np.testing.assert_array_equal(mask, np.maximum(box, brush))
        assert mask.dtype == np.float32
        assert box.sum() > 0 and (brush > box).any()


@pytest.mark.parametrize('h, w', [(200, 300), (300, 200), (64, 96)])
def test_training_generators_non_square(h, w):
    rng = np.random.default_rng(7)
    params = dict(height=h // 2, width=w // 2, vertical_margin=0, horizontal_margin=0,
                  max_delta_height=h // 8, max_delta_width=w // 8)
    for _ in range(20):
        box = _box(h, w, rng, params)
        top, bottom, left, right = _bounds(box)
        assert h // 2 - 2 * (h // 16) <= bottom - top <= h // 2
        assert w // 2 - 2 * (w // 16) <= right - left <= w // 2
        brush = masks.brush_stroke_mask(h, w, rng)
        mask = masks.training_mask(h, w, rng=rng, **params)
        for m in (box, brush, mask):
            assert m.shape == (h, w) and m.dtype == np.float32
            assert 0 < m.sum() < m.size


# ---------------------------------------------------------------------------------------------
# Evaluation families.

@pytest.mark.parametrize('family', sorted(masks.FAMILIES))
def test_make_mask_reproducible(family):
    a = masks.make_mask(family, 256, 256, seed=3, index=11)
    b = masks.make_mask(family, 256, 256, seed=3, index=11)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, masks.make_mask(family, 256, 256, seed=3, index=12))
    assert not np.array_equal(a, masks.make_mask(family, 256, 256, seed=4, index=11))


# Box: (96..128)^2 / 256^2. Line/circle: the target is U(0.10, 0.30); one shape overshoots it by a
# few percent at most.
# Large box: U(0.3, 0.6) of the image, sides rounded to pixels.
_RANGES = {'box': (96 * 96 / 65536, 128 * 128 / 65536), 'line_circle': (0.10, 0.40),
           'large_box': (0.30, 0.60)}


@pytest.mark.parametrize('h, w', [(256, 256), (200, 300), (512, 384)])
@pytest.mark.parametrize('family', sorted(masks.FAMILIES))
def test_eval_family_coverage(family, h, w):
    low, high = _RANGES[family]
    fractions = []
    for seed in range(50):
        mask = masks.make_mask(family, h, w, seed=seed, index=0)
        assert mask.dtype == bool and mask.shape == (h, w)
        assert mask.any() and not mask.all()
        fractions.append(masks.hole_fraction(mask))
    # Box sides are rounded to even pixel counts, hence the 0.01 slack at non-256 sizes.
    assert low - 0.01 <= min(fractions) and max(fractions) <= high + 0.01
    assert len(set(fractions)) > 25  # they vary
    if family == 'line_circle':
        assert 0.15 < np.median(fractions) < 0.27
    if family == 'large_box':
        assert 0.38 < np.mean(fractions) < 0.52


def test_large_box_is_one_rectangle():
    for index in range(20):
        mask = masks.make_mask('large_box', 200, 300, seed=0, index=index)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()  # filled, one box
        assert mask.sum() == len(rows) * len(cols)


def test_line_circle_has_thin_and_round_parts():
    # Not a box: much of the hole is near its boundary (thin strokes and rings).
    for index in range(10):
        mask = masks.make_mask('line_circle', 256, 256, seed=0, index=index)
        core = mask[1:-1, 1:-1]
        inner = core & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        boundary = core.sum() - inner.sum()
        assert boundary > 0.1 * mask.sum()


def test_make_mask_unknown_family():
    with pytest.raises(ValueError, match='unknown mask family'):
        masks.make_mask('ellipse', 64, 64, 0, 0)


def test_hole_fraction():
    mask = np.zeros((4, 5), np.float32)
    mask[:2, :2] = 1
    assert masks.hole_fraction(mask) == pytest.approx(4 / 20)
    assert masks.hole_fraction(mask > 0) == pytest.approx(4 / 20)
    assert masks.hole_fraction((mask * 255).astype(np.uint8)[..., None]) == pytest.approx(4 / 20)
    assert masks.hole_fraction(np.ones((3, 3), bool)) == 1.0


# ----------------------------------------------------------------------------------------------
# The mask files' rule (imageio.mask_holes / read_mask), used by every command and the API.

def _hole(h=40, w=48):
    """A bool box with a stroke: the painted holes of the rule's tests."""
    hole = np.zeros((h, w), bool)
    hole[8:24, 16:40] = True
    hole[30:33, 2:20] = True
    return hole


def _encode(kind, hole):
    """(array as OpenCV writes it (BGR[A]), extension) of a mask file painting `hole`."""
    h, w = hole.shape
    if kind == 'gray_0_1':
        return hole.astype(np.uint8), '.png'
    if kind == 'rgb_0_255':
        return np.repeat(hole[..., None], 3, 2).astype(np.uint8) * 255, '.png'
    if kind == 'red_on_black':  # OpenCV's first channel (blue) is 0 everywhere
        array = np.zeros((h, w, 3), np.uint8)
        array[hole, 2] = 255
        return array, '.png'
    if kind == 'dark_green_0_1':  # a 0/1 mask in the second channel only
        array = np.zeros((h, w, 3), np.uint8)
        array[hole, 1] = 1
        return array, '.png'
    if kind in ('white_on_transparent', 'black_on_transparent'):
        array = np.zeros((h, w, 4), np.uint8)
        array[hole, :3] = 255 if kind.startswith('white') else 0
        array[hole, 3] = 255
        return array, '.png'
    if kind == 'opaque_rgba':  # alpha 255 everywhere says nothing: the colour counts
        array = np.full((h, w, 4), 255, np.uint8)
        array[~hole, :3] = 0
        return array, '.png'
    if kind == 'gray_alpha':  # a gray + alpha PNG (OpenCV reads it as BGRA): black strokes
        array = np.zeros((h, w, 2), np.uint8)
        array[hole, 1] = 255
        return array, '.png'
    if kind == 'gray16_0_65535':
        return hole.astype(np.uint16) * 65535, '.png'
    if kind == 'gray16_0_1':
        return hole.astype(np.uint16), '.png'
    raise ValueError(kind)


MASK_KINDS = ['gray_0_1', 'rgb_0_255', 'red_on_black', 'dark_green_0_1', 'white_on_transparent',
              'black_on_transparent', 'opaque_rgba', 'gray_alpha', 'gray16_0_65535', 'gray16_0_1']


@pytest.mark.parametrize('kind', MASK_KINDS)
def test_mask_files_are_holes_where_painted(tmp_path, kind):
    import cv2
    from inpaint.imageio import read_mask
    hole = _hole()
    array, ext = _encode(kind, hole)
    path = str(tmp_path / f'mask{ext}')
    if array.ndim == 3 and array.shape[2] == 2:  # OpenCV cannot write gray + alpha
        from PIL import Image
        Image.fromarray(array, 'LA').save(path)
    else:
        assert cv2.imwrite(path, array)
    np.testing.assert_array_equal(read_mask(path), hole)


def test_jpeg_mask_noise_is_not_a_hole(tmp_path):
    """A JPEG of white holes on black: compression noise around 0 and 255 stays on its side."""
    import cv2
    from inpaint.imageio import read_mask
    hole = _hole()
    path = str(tmp_path / 'mask.jpg')
    cv2.imwrite(path, hole.astype(np.uint8) * 255, [cv2.IMWRITE_JPEG_QUALITY, 50])
    noisy = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert 0 < noisy[~hole].max() and noisy[hole].min() < 255  # the file is noisy, on both sides
    got = read_mask(path)
    kernel = np.ones((3, 3), np.uint8)
    grown = cv2.dilate(hole.astype(np.uint8), kernel) > 0
    shrunk = cv2.erode(hole.astype(np.uint8), kernel) > 0
    assert not got[~grown].any() and got[shrunk].all()  # only the 1-px border may differ
    assert (got != hole).mean() < 0.01


@pytest.mark.parametrize('kind,original_holes', [('rgb_0_255', True), ('gray_0_1', False),
                                                 ('red_on_black', False)])
def test_original_flag_keeps_the_first_channel_rule(tmp_path, kind, original_holes):
    """`read_mask(original=True)`: OpenCV's first channel > 127.5, as the authors' test.py."""
    import cv2
    from inpaint.imageio import read_mask
    hole = _hole()
    array, ext = _encode(kind, hole)
    path = str(tmp_path / f'mask{ext}')
    cv2.imwrite(path, array)
    np.testing.assert_array_equal(read_mask(path, original=True), hole if original_holes else
                                  np.zeros_like(hole))


@pytest.mark.parametrize('mask,expected', [
    (np.array([[0, 1]], np.uint8), [[False, True]]),
    (np.array([[0, 255]], np.uint8), [[False, True]]),
    (np.array([[3, 200]], np.uint8), [[False, True]]),            # JPEG-like noise at 3
    (np.array([[0.0, 1.0]], np.float32), [[False, True]]),
    (np.array([[0.2, 0.7]], np.float64), [[False, True]]),
    (np.array([[0.0, 255.0]], np.float32), [[False, True]]),
    (np.array([[False, True]]), [[False, True]]),
    (np.array([[0, 1]], np.int64), [[False, True]]),
    (np.array([[[0, 0, 0], [0, 9, 255]]], np.uint8), [[False, True]]),  # any channel
    (np.array([[[255, 0], [0, 255]]], np.uint8), [[False, True]]),       # gray + alpha
    (np.array([[[0, 0, 0, 0], [0, 0, 0, 0]]], np.uint8), [[False, False]]),  # empty layer
    (np.array([[0, 40000]], np.uint16), [[False, True]]),
    (np.array([[0, 255]], np.uint16), [[False, False]]),          # 8-bit values in a 16-bit file
])
def test_mask_holes_rule(mask, expected):
    from inpaint.imageio import mask_holes
    np.testing.assert_array_equal(mask_holes(mask), np.array(expected))


def test_mask_holes_rejects_non_masks():
    from inpaint.imageio import InputError, mask_holes
    with pytest.raises(InputError, match='not a mask'):
        mask_holes(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(InputError, match='not a mask'):
        mask_holes(np.zeros(4, np.uint8))
