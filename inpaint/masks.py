"""Hole masks: the original's training generators and two evaluation families.

Conventions: a mask is an (H, W) array, 1 (or True) = hole, 0 = known pixel. Training masks are
float32 like the original's; evaluation masks are bool. Every generator takes an explicit
`np.random.Generator`, so a mask is reproducible from a seed. Mask files are written by
`imageio.py` as 255 = hole and read by its one rule, `imageio.mask_holes`.

Training masks follow `inpaint_ops.py` of generative_inpainting v2.0.0 (`random_bbox`, `bbox2mask`,
`brush_stroke_mask`): the same distributions and the same order of random draws, but from `rng`
instead of TensorFlow's and NumPy's global generators, so the masks are equal in distribution, not
bit for bit.
"""
import math

import cv2
import numpy as np

# Brush-stroke constants of the original.
_MIN_NUM_VERTEX = 4
_MAX_NUM_VERTEX = 12  # exclusive, as np.random.randint: 4..11 vertices
_MEAN_ANGLE = 2 * math.pi / 5
_ANGLE_RANGE = 2 * math.pi / 15
_MIN_WIDTH = 12
_MAX_WIDTH = 40


def random_bbox(img_height, img_width, height, width, vertical_margin, horizontal_margin, rng):
    """Places a `height` x `width` box uniformly inside the margins.

    As the original's `tf.random_uniform(minval, maxval, int32)`, the upper bound is exclusive:
    top in [vertical_margin, img_height - vertical_margin - height).

    Args:
        img_height, img_width: image size.
        height, width: box size.
        vertical_margin, horizontal_margin: distance kept from the image borders.
        rng: np.random.Generator.
    Returns:
        (top, left, height, width) ints.
    Raises:
        ValueError: the box and margins leave no room (the original fails there too).
    """
    max_top = img_height - vertical_margin - height
    max_left = img_width - horizontal_margin - width
    if max_top <= vertical_margin or max_left <= horizontal_margin:
        raise ValueError(
            f'box {height}x{width} with margins ({vertical_margin}, {horizontal_margin}) does not '
            f'fit in a {img_height}x{img_width} image with room to move; make the box or margins '
            'smaller')
    top = int(rng.integers(vertical_margin, max_top))
    left = int(rng.integers(horizontal_margin, max_left))
    return top, left, height, width


def bbox_to_mask(bbox, img_height, img_width, max_delta_height, max_delta_width, rng):
    """Fills a box, each side shrunk by a random 0..max_delta//2 (inclusive), as the original.

    The same shrink applies to top and bottom (and to left and right), as in the original.

    Args:
        bbox: (top, left, height, width).
        img_height, img_width: mask size.
        max_delta_height, max_delta_width: total shrink range.
        rng: np.random.Generator.
    Returns:
        float32 (img_height, img_width), 1 = hole.
    """
    top, left, height, width = bbox
    delta_h = int(rng.integers(max_delta_height // 2 + 1))
    delta_w = int(rng.integers(max_delta_width // 2 + 1))
    mask = np.zeros((img_height, img_width), np.float32)
    mask[top + delta_h:top + height - delta_h, left + delta_w:left + width - delta_w] = 1.0
    return mask


def _stroke(img_height, img_width, average_radius, rng):
    """Draws one stroke's vertices and width, in the original's order of random draws.

    Returns:
        (vertices, width): int array (num_vertex + 1, 2) of (x, y), and the brush width.
    """
    num_vertex = int(rng.integers(_MIN_NUM_VERTEX, _MAX_NUM_VERTEX))
    angle_min = _MEAN_ANGLE - rng.uniform(0, _ANGLE_RANGE)
    angle_max = _MEAN_ANGLE + rng.uniform(0, _ANGLE_RANGE)
    angles = []
    for i in range(num_vertex):  # alternate the turning direction
        angle = rng.uniform(angle_min, angle_max)
        angles.append(2 * math.pi - angle if i % 2 == 0 else angle)
    # The original writes `h, w = mask.size`, which is (W, H) for a PIL image, so the x and y ranges
    # swap on non-square images. Here x runs over the width and y over the height, as intended; for
    # square images (all the original's configurations) the two agree.
    vertices = [(int(rng.integers(0, img_width)), int(rng.integers(0, img_height)))]
    for angle in angles:
        step = rng.normal(loc=average_radius, scale=average_radius // 2)
        step = np.clip(step, 0, 2 * average_radius)
        # Clipped to [0, W] and [0, H] inclusive, as the original.
        x = np.clip(vertices[-1][0] + step * math.cos(angle), 0, img_width)
        y = np.clip(vertices[-1][1] + step * math.sin(angle), 0, img_height)
        vertices.append((int(x), int(y)))
    width = int(rng.uniform(_MIN_WIDTH, _MAX_WIDTH))
    return np.array(vertices, np.int32), width


def _disc(radius):
    """The disc PIL's `ellipse` fills for the box (x - r, y - r, x + r, y + r): uint8 (2r+1, 2r+1).

    Measured against Pillow: those are the pixel centres within r + 0.4 of the centre (cv2.circle of
    radius r fills 5-12% fewer pixels at r = 6..19).
    """
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (radius + 0.4) ** 2).astype(np.uint8)


def _draw_stroke(mask, vertices, width):
    """Draws a thick polyline with a disc of radius width//2 at each vertex, in place, like PIL.

    PIL's `line(width=w)` (the original) fills each segment's rectangle reaching (w - 1)/2 either
    side of the centre line, which cv2 draws with thickness w - 1 (w gives about 3% more pixels);
    cv2's round caps fall inside the vertex discs. No anti-aliasing (LINE_8), as PIL in mode 'L'.
    Together this differs from PIL on about 0.1% of the pixels of a 256x256 brush mask.

    Args:
        mask: uint8 (H, W), modified.
        vertices: int32 (N, 2) of (x, y).
        width: brush width in pixels.
    """
    cv2.polylines(mask, [vertices.reshape(-1, 1, 2)], isClosed=False, color=1,
                  thickness=max(1, width - 1), lineType=cv2.LINE_8)
    radius = width // 2
    disc = _disc(radius)
    height, width_img = mask.shape
    for x, y in vertices:
        top, left = y - radius, x - radius
        # Clip the disc's window to the image (vertices may lie on or past the border).
        y0, y1 = max(top, 0), min(top + 2 * radius + 1, height)
        x0, x1 = max(left, 0), min(left + 2 * radius + 1, width_img)
        if y0 < y1 and x0 < x1:
            mask[y0:y1, x0:x1] |= disc[y0 - top:y1 - top, x0 - left:x1 - left]


def brush_stroke_mask(img_height, img_width, rng):
    """Free-form mask of 1-3 brush strokes, as the original's `brush_stroke_mask`.

    Each stroke has 4-11 segments whose directions alternate around 2*pi/5 +- U(0, 2*pi/15), segment
    lengths normal(mean=sqrt(H^2 + W^2)/8, std=mean//2) clipped to [0, 2*mean], width int(U(12, 40)).

    Args:
        img_height, img_width: mask size.
        rng: np.random.Generator.
    Returns:
        float32 (img_height, img_width), 1 = hole.
    """
    average_radius = math.sqrt(img_height * img_height + img_width * img_width) / 8
    mask = np.zeros((img_height, img_width), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        vertices, width = _stroke(img_height, img_width, average_radius, rng)
        _draw_stroke(mask, vertices, width)
    # The original flips with `mask.transpose(...)` and discards the result: its flips are no-ops.
    # Keep them no-ops, but consume the same two draws so the random stream stays aligned.
    rng.normal()
    rng.normal()
    return mask.astype(np.float32)


def training_mask(img_height, img_width, height, width, vertical_margin, horizontal_margin,
                  max_delta_height, max_delta_width, rng):
    """The original's training mask: union of a random box and a brush-stroke mask.

    Args:
        img_height, img_width: mask size (the config's img_shapes[:2]).
        height, width, vertical_margin, horizontal_margin: box size and margins (`random_bbox`).
        max_delta_height, max_delta_width: box shrink range (`bbox_to_mask`).
        rng: np.random.Generator.
    Returns:
        float32 (img_height, img_width), 1 = hole.
    """
    bbox = random_bbox(img_height, img_width, height, width, vertical_margin, horizontal_margin,
                       rng)
    box = bbox_to_mask(bbox, img_height, img_width, max_delta_height, max_delta_width, rng)
    brush = brush_stroke_mask(img_height, img_width, rng)
    return np.maximum(box, brush)


# ----------------------------------------------------------------------------------------------
# Evaluation families: deterministic from (seed, index).


def box_mask(h, w, rng):
    """A box like the original's training boxes, scaled to the image.

    At 256x256: 128x128 placed uniformly, each side shrunk by 0..16.

    Args:
        h, w: mask size (at least 4x4).
        rng: np.random.Generator.
    Returns:
        bool (h, w), True = hole.
    """
    bbox = random_bbox(h, w, h // 2, w // 2, 0, 0, rng)
    return bbox_to_mask(bbox, h, w, h // 8, w // 8, rng) > 0.5


def _bezier(points, num=64):
    """Samples a Bezier curve given its control points (K, 2); returns float (num, 2)."""
    t = np.linspace(0.0, 1.0, num)[:, None]
    degree = len(points) - 1
    curve = np.zeros((num, 2))
    for k, point in enumerate(points):
        curve += math.comb(degree, k) * t ** k * (1 - t) ** (degree - k) * point
    return curve


def line_circle_mask(h, w, rng):
    """Straight lines, circles (filled or rings) and Bezier curves, until a random target coverage.

    A target hole fraction is drawn from U(0.10, 0.30) and random shapes are added until it is
    reached. Sizes and thicknesses scale with sqrt(h * w) / 256, so the look does not depend on the size.
    Each shape adds at most a few percent at 256x256, so the coverage lands just above the target.

    Args:
        h, w: mask size.
        rng: np.random.Generator.
    Returns:
        bool (h, w), True = hole.
    """
    scale = math.sqrt(h * w) / 256
    target = rng.uniform(0.10, 0.30)
    size = np.array([w, h], np.float64)
    mask = np.zeros((h, w), np.uint8)

    def thickness():
        return max(1, int(round(rng.uniform(3, 18) * scale)))

    def point():
        return rng.uniform(0, 1, 2) * size

    for _ in range(500):  # a bound, never reached in practice: each shape adds pixels
        kind = rng.choice(('line', 'circle', 'curve'))
        if kind == 'line':
            start = point()
            direction = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(30, 160) * scale
            end = start + length * np.array([math.cos(direction), math.sin(direction)])
            cv2.line(mask, tuple(int(v) for v in start), tuple(int(v) for v in end), 1, thickness())
        elif kind == 'circle':
            center = tuple(int(v) for v in point())
            if rng.uniform() < 0.5:
                radius = max(1, int(rng.uniform(5, 25) * scale))
                cv2.circle(mask, center, radius, 1, thickness=-1)
            else:
                radius = max(2, int(rng.uniform(10, 50) * scale))
                cv2.circle(mask, center, radius, 1, thickness=min(thickness(), radius))
        else:
            start = point()
            spread = rng.uniform(40, 120) * scale  # control points near the start keep curves local
            controls = start + rng.uniform(-spread, spread, (int(rng.integers(2, 4)), 2))
            curve = _bezier(np.concatenate([start[None], controls]))
            cv2.polylines(mask, [curve.astype(np.int32).reshape(-1, 1, 2)], False, 1, thickness())
        if mask.mean() >= target:
            break
    return mask.astype(bool)


def large_box_mask(h, w, rng):
    """One axis-aligned box covering 30% to 60% of the image, placed uniformly.

    The hole fraction is drawn from U(0.3, 0.6) and the aspect ratio (box height / width relative
    to the image's) from U(0.6, 1.6), clipped so that the box fits: where learned inpainting should
    beat diffusion most clearly.

    Args:
        h, w: mask size (at least 4x4).
        rng: np.random.Generator.
    Returns:
        bool (h, w), True = hole.
    """
    fraction = rng.uniform(0.3, 0.6)
    aspect = rng.uniform(0.6, 1.6)
    box_h = int(round(min(h, max(1, h * np.sqrt(fraction * aspect)))))
    box_w = int(round(min(w, max(1, h * w * fraction / box_h))))
    top = int(rng.integers(0, h - box_h + 1))
    left = int(rng.integers(0, w - box_w + 1))
    mask = np.zeros((h, w), bool)
    mask[top:top + box_h, left:left + box_w] = True
    return mask


FAMILIES = {'box': box_mask, 'line_circle': line_circle_mask, 'large_box': large_box_mask}


def make_mask(family, h, w, seed, index):
    """The evaluation mask number `index` of a family, reproducible from (seed, index).

    Args:
        family: a key of `FAMILIES`.
        h, w: mask size.
        seed, index: non-negative ints; the generator is `np.random.default_rng([seed, index])`.
    Returns:
        bool (h, w), True = hole.
    Raises:
        ValueError: unknown family.
    """
    if family not in FAMILIES:
        raise ValueError(f'unknown mask family {family!r}; choose one of {sorted(FAMILIES)}')
    return FAMILIES[family](h, w, np.random.default_rng([seed, index]))


def hole_fraction(mask):
    """Fraction of hole pixels (value > 0.5, so float 0/1, bool and 0/255 masks all work).

    Args:
        mask: array (H, W) or (H, W, 1).
    Returns:
        float in [0, 1].
    """
    return float(np.mean(np.asarray(mask) > 0.5))
