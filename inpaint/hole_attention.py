"""Contextual attention computed only where it reaches the hole, with the dense result's numbers.

The dense attention (`layers.BlockedAttention`) scores every query position against every key
patch: at 2048 px that is 65,536 x 65,536 scores. For inpainting, only the queries whose pasted
patches reach a hole pixel of `x_stage2` through the layers after the attention matter
(`InpaintGenerator.attention_reach` and `ContextualAttention.paste_reach` derive them from the
layer stack), and keys whose patch touches the hole are multiplied by zero after the softmax, so
they add only `exp(0 - max)` each to its denominator. Here scores are computed for the needed
queries against the hole-free keys, with the masked keys' exact share of the denominator added,
so every needed query's pasted patch equals the dense one to float rounding.

The fuse step (see `BlockedAttention`) adds scores of neighbouring queries and keys along both
flattening orders: F(p, q) = sum over t, s in {-1, 0, 1} of S(n(p, t, s), n(q, t, s)), where
n(x, t, s) moves x by t in column-major order, then by s in row-major order (none past the
ends). So a chunk of queries computes S for the rows its queries' neighbours need (`rows`), and
the keys' neighbours give the score columns (`columns`); both are gathered, never recomputed.

Host-side planning (`plan_attention`) is NumPy on the masks; the device side (`attend`) is
`keras.ops` on any backend. Padded entries point at index hw, read as a zero row.
Pasted patches of queries that are not needed are zero: `x_stage2` there, and the attention
offsets (not computed here), differ from the dense computation's.
"""
import dataclasses

import keras
import numpy as np
from keras import ops

from inpaint import backends
from inpaint.backends import bucket

TILE = 16  # queries are chunked in TILE x TILE tiles, so a chunk's neighbour rows stay few
NEIGHBOURS = [(t, s) for t in (-1, 0, 1) for s in (-1, 0, 1)]


def neighbour(x, t, s, h, w):
    """n(x, t, s) on an h x w grid flattened row-major: x moved by t in column-major order, then by
    s in row-major order; hw (none) past either end. x: int NumPy array of indices (hw = none)."""
    size = h * w
    none = x >= size
    column_major = (x % w) * h + x // w + t
    moved = (column_major % h) * w + column_major // h
    none |= (column_major < 0) | (column_major >= size)
    moved = moved + s
    none |= (moved < 0) | (moved >= size)
    return np.where(none, size, moved)


@dataclasses.dataclass
class Chunk:
    """Index arrays of one chunk of C queries (hw = none or padding).

    rows: (U,) query positions whose scores the chunk computes.
    row_of: (9, C) for each neighbour (t, s), the position in `rows` of each query's neighbour.
    """
    rows: np.ndarray
    row_of: np.ndarray


@dataclasses.dataclass
class AttentionPlan:
    """Which queries and keys of one image to compute (see `plan_attention`).

    keys: (K,) hole-free keys (padded with hw); key_valid: (1, K) float, 1 for real keys.
    masked_keys: the number of keys the mask zeroes (their share of the softmax).
    columns: (Ks,) keys whose scores the fuse step reads, sorted, then two padding columns (hw);
        column_of: (3, K) the position in `columns` of each key's neighbour (t, 0). Its neighbour
        (t, s) is then at that position + s (`columns` holds n(q, t, 0) +- 1 with it), or at a
        padding column, zero as its neighbours, when there is none.
    chunks: list of `Chunk`; where: (hw,) for each query, its position in the chunks' queries
        in order, or n * C (a zero row) when not needed.
    """
    size: tuple
    keys: np.ndarray
    key_valid: np.ndarray
    masked_keys: float
    columns: np.ndarray
    column_of: np.ndarray
    chunks: list
    where: np.ndarray

    def cost(self, ksize=3, rate=2):
        """The scores' and paste's multiply-adds relative to the dense attention's: score rows x
        columns x k*k plus queries x keys x 4r*r, over hw x hw x (k*k + 4r*r)."""
        h, w = self.size
        score = sum(len(chunk.rows) for chunk in self.chunks) * len(self.columns)
        paste = sum(chunk.row_of.shape[1] for chunk in self.chunks) * len(self.keys)
        return ((score * ksize ** 2 + paste * 4 * rate ** 2)
                / ((h * w) ** 2 * (ksize ** 2 + 4 * rate ** 2)))


def plan_attention(needed, key_valid, fuse=True, chunk_bytes=128 * 2**20):
    """Plans one image's needed queries against its hole-free keys.

    Args:
        needed: bool NumPy (h, w), queries whose patches reach a hole pixel.
        key_valid: NumPy (h*w,) or (h, w), 1 where a key patch is free of holes (the layer's `mm`).
        fuse: whether the attention fuses scores (DeepFill: yes).
        chunk_bytes: about the memory of one chunk's score matrix.
    Returns:
        `AttentionPlan`.
    """
    h, w = needed.shape
    size = h * w
    shifts = NEIGHBOURS if fuse else [(0, 0)]
    keys = np.flatnonzero(np.asarray(key_valid).reshape(size) > 0.5)
    key_count = bucket(max(len(keys), 1))
    moved = np.stack([neighbour(keys, t, s, h, w) for t, s in shifts])  # (9, K)
    columns = np.unique(moved[moved < size])
    column_count = bucket(len(columns) + 2)
    centre = np.stack([neighbour(keys, t, 0, h, w) for t in sorted({t for t, _ in shifts})])
    column_of = np.full((len(centre), key_count), column_count - 1, np.int32)
    column_of[:, :len(keys)] = np.where(centre < size, np.searchsorted(columns, centre),
                                        column_count - 1)
    queries = _tile_order(np.flatnonzero(needed.reshape(-1)), w)
    chunk = _chunk_size(len(queries), int(chunk_bytes // (4 * column_count)))
    chunks = []
    for start in range(0, len(queries), chunk):
        picked = queries[start:start + chunk]
        moved = np.stack([neighbour(picked, t, s, h, w) for t, s in shifts])  # (9, <= C)
        rows = np.unique(moved[moved < size])
        row_count = bucket(len(rows) + 1)
        row_of = np.full((len(shifts), chunk), row_count - 1, np.int32)
        row_of[:, :len(picked)] = np.searchsorted(rows, moved)  # none -> a zero row
        chunks.append(Chunk(_padded(rows, row_count, size), row_of))

    where = np.full(size, len(chunks) * chunk, np.int32)
    where[queries] = np.arange(len(queries))
    valid = np.zeros((1, key_count), np.float32)
    valid[0, :len(keys)] = 1.0
    return AttentionPlan(size=(h, w), keys=_padded(keys, key_count, size), key_valid=valid,
                         masked_keys=float(size - len(keys)),
                         columns=_padded(columns, column_count, size), column_of=column_of,
                         chunks=chunks, where=where)


def _chunk_size(queries, limit):
    """Queries per chunk: at most `limit` (clipped to 64..4096, a multiple of 64), the queries
    spread evenly over the fewest chunks (padding is computed like real queries), bucketed."""
    limit = int(np.clip(limit, 64, 4096)) // 64 * 64
    count = -(-max(queries, 1) // limit)
    return min(limit, bucket(-(-max(queries, 1) // count), per_octave=4, multiple=64))


def attend(fp, wn, raw, plan, softmax_scale=10.0, image=0):
    """Pasted patches of one image's needed queries, as the dense attention's.

    Three steps, each one function compiled by the running backend (`backends.compile_function`,
    per shape; the shapes are bucketed), so gathers, shifts and softmax fuse where the backend
    can: the image's rows, each chunk (`chunk_patches`), then the queries' rows in grid order.

    Args:
        fp, wn, raw: a batch's attention inputs (`ContextualAttention.prepare`), (B, hw, .), or
            as grids (B, h, w, .).
        plan: the image's `AttentionPlan`.
        softmax_scale: the layer's `softmax_scale`.
        image: which image of the batch.
    Returns:
        (h, w, 4r*r*C) tensor; zero for queries that are not needed.
    """
    queries, key_patches, key_raw = _compiled(_image_rows)(fp, wn, raw, np.int32(image),
                                                           plan.columns, plan.keys)
    # The masked keys' scores are exactly 0, so the dense softmax's max is at least 0 with any.
    constants = (np.float32(softmax_scale), np.float32(plan.masked_keys),
                 np.float32(0.0 if plan.masked_keys else -np.inf))
    results = [_compiled(chunk_patches)(queries, chunk.rows, key_patches, key_raw, chunk.row_of,
                                        plan.column_of, plan.key_valid, *constants)
               for chunk in plan.chunks]
    return _compiled(_query_grid)(plan.where.reshape(plan.size), *results)


def _image_rows(fp, wn, raw, image, columns, keys):
    """One image's query patches (hw, D), key patches of `columns` (Ks, D) and raw patches of
    `keys` (K, Dr)."""
    return (_image(fp, image), _rows(_image(wn, image), columns),
            _rows(_image(raw, image), keys))


def _query_grid(where, *results):
    """The chunks' patches (C, Dr) each -> every query's, (h, w, Dr) as `where` (h, w)."""
    patches = _rows(ops.concatenate(results, axis=0), ops.reshape(where, (-1,)))
    return ops.reshape(patches, tuple(where.shape) + (patches.shape[-1],))


def chunk_patches(fp, rows, key_patches, key_raw, row_of, column_of, key_valid, softmax_scale,
                  masked_keys, floor):
    """One chunk's pasted patches.

    Args:
        fp: (hw, D) the image's query patches; rows: (U,) the chunk's `rows`;
        key_patches: (Ks, D) wn of `columns`;
        key_raw: (K, Dr) raw patches of the keys; row_of: (9 or 1, C) and column_of (3 or 1, K)
        int32, as in `Chunk` and `AttentionPlan`; key_valid: (1, K) 1 for real keys;
        softmax_scale, masked_keys, floor: float32 scalars (floor: 0 when any key is masked).
    Returns:
        (C, Dr) patches.
    """
    scores = ops.matmul(_rows(fp, rows), ops.transpose(key_patches))  # (U, Ks)
    # F(p, q) = sum_t Y_t[p, column_of[t, q]], Y_t[:, j] = sum_s S[n(p, t, s), j + s].
    # Summed as the dense attention does: t = 0, -1, 1, and s = -1, 0, 1 within.
    steps = (-1, 0, 1) if row_of.shape[0] == 9 else (0,)
    # The column gathers run as row gathers of the transpose (several times faster on TF).
    fused = 0.0
    for t in ((1, 0, 2) if column_of.shape[0] == 3 else (0,)):
        shifted = 0.0
        for index, s in enumerate(steps):
            shifted = shifted + _shift_columns(ops.take(scores, row_of[t * len(steps) + index],
                                                        axis=0), s)
        fused = fused + ops.take(ops.transpose(shifted), column_of[t], axis=0)  # (K, C)
    logits = ops.transpose(fused) * softmax_scale  # (C, K)
    valid = key_valid > 0
    top = ops.maximum(ops.max(ops.where(valid, logits, -np.inf), axis=-1, keepdims=True),
                      floor)  # (C, 1)
    weights = ops.where(valid, ops.exp(logits - top), 0.0)
    total = ops.sum(weights, axis=-1, keepdims=True) + masked_keys * ops.exp(-top)
    return ops.matmul(weights, key_raw) / total  # (C, Dr): C x Dr divisions, not C x K


_COMPILED = {}


def compiled_shapes():
    """How many shapes this process's attention steps (`attend`'s three functions) have been
    compiled for, on every backend used."""
    return sum(fn.tracing_count() for fn in _COMPILED.values())


def _compiled(fn):
    """`fn` compiled by the running backend (one per process, backend and function)."""
    key = (keras.backend.backend(), fn)
    if key not in _COMPILED:
        _COMPILED[key] = backends.compile_function(fn, [])
    return _COMPILED[key]


def _tile_order(queries, w):
    """Queries (flat row-major indices) sorted tile by tile (TILE x TILE), row-major inside."""
    rows, cols = queries // w, queries % w
    return queries[np.lexsort((cols, rows, cols // TILE, rows // TILE))]


def _padded(values, length, fill):
    """1-D int array -> (length,) int32, padded with `fill`."""
    out = np.full(length, fill, np.int32)
    out[:len(values)] = values
    return out


def _shift_columns(x, s):
    """y[:, j] = x[:, j + s], zero past the edges: (n, m) -> (n, m); s in {-1, 0, 1}."""
    if s == 0:
        return x
    if s > 0:
        return ops.pad(x[:, s:], [[0, 0], [0, s]])
    return ops.pad(x[:, :s], [[0, 0], [-s, 0]])


def _image(x, image):
    """One image's rows (hw, D) of a batch (B, hw, D) or (B, h, w, D)."""
    return ops.reshape(x[image], (-1, x.shape[-1]))


def _rows(x, index):
    """x (n, D) rows at int `index` (m,), zero where the index is n (none or padding): (m, D)."""
    n = x.shape[0]
    rows = ops.take(x, ops.minimum(index, n - 1), axis=0)
    return ops.where(ops.expand_dims(index < n, 1), rows, ops.zeros((), x.dtype))
