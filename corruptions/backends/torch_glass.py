"""glass_blur's sequential pixel walk, vectorised exactly: the same random draws, the same pixels.

The package (imagecorruptions-imaug, numba) walks the interior pixels ``h = H - d .. d + 1``, ``w = W - d .. d + 1``
(both descending, ``d`` = max_delta), ``iterations`` times, and for each draws ``dx, dy = randint(-d, d, size=2)``
from numba's generator seeded with the call's seed, then runs ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on
array views: the first assignment copies the source pixel, the second then copies it back onto itself. So each
walk sets ``x[p] = x[s(p)]`` in order, where ``s(p) = p + (dy, dx)``, reading the source as it is at that moment.

Exact vectorisation of one walk: the source has already been written iff it lies in the walked rectangle and comes
earlier in the walk (``dy > 0``, or ``dy == 0`` and ``dx > 0``); then ``new[p] = new[s(p)]``, else ``new[p] =
old[s(p)]``. Following those links to their end (pointer doubling, a few rounds: each link continues with
probability <= 0.42) gives, for every pixel, the index of the old pixel it ends up holding. Walks compose as index
maps, so the whole shuffle is one gather.

The draws: numba's MT19937 is seeded as NumPy's legacy ``RandomState(seed)`` (init_genrand), and its
``np.random.randint(lo, hi)`` keeps the low ``bit_length(hi - lo - 1)`` bits of each 32-bit output, rejecting values
``>= hi - lo``. ``RandomState.randint(0, 2**32, dtype=uint32)`` returns those raw outputs, so the same mask and
rejection reproduce numba's stream exactly (tests/test_torch_glass_spatter.py checks it against the numba walk).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def numba_randint_stream(seed: int, count: int, low: int, high: int) -> np.ndarray:
    """The first ``count`` values of ``np.random.randint(low, high)`` inside numba after ``np.random.seed(seed)``.

    Returns int8 [count] (``-128 <= low < high <= 127``).
    """
    n = high - low
    mask = (1 << (n - 1).bit_length()) - 1
    rs = np.random.RandomState(seed)
    if n == mask + 1:  # a power of two: every draw is kept
        return _low_bits(rs.randint(0, 2 ** 32, size=count, dtype=np.uint32), mask, low)
    parts, have = [], 0
    while have < count:
        size = int((count - have) * (mask + 1) / n * 1.01) + 64
        raw = _low_bits(rs.randint(0, 2 ** 32, size=size, dtype=np.uint32), mask, 0)
        kept = raw[raw < n]
        parts.append(kept)
        have += len(kept)
    return np.concatenate(parts)[:count] + np.int8(low)


def _low_bits(raw: np.ndarray, mask: int, low: int) -> np.ndarray:
    """``(raw & mask) + low`` as int8, read from the lowest byte of each uint32 (mask < 256)."""
    lowest = raw.view(np.uint8)[::4] if raw.dtype.byteorder in "=<" and np.little_endian else raw.astype(np.uint8)
    out = np.bitwise_and(lowest, np.uint8(mask)).view(np.int8)
    return out + np.int8(low) if low else out


@lru_cache(maxsize=8)
def _walk_geometry(h: int, w: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the walked rectangle rows d+1..H-d, cols d+1..W-d in ascending order [nh, nw] (int32) and its
    mask [H * W] (read-only, cached)."""
    base = (np.arange(d + 1, h - d + 1, dtype=np.int32)[:, None] * np.int32(w)
            + np.arange(d + 1, w - d + 1, dtype=np.int32)[None, :])
    walked = np.zeros((h, w), bool)
    walked[d + 1:h - d + 1, d + 1:w - d + 1] = True
    base.setflags(write=False)
    walked.setflags(write=False)
    return base, walked.reshape(-1)


def shuffle_index(h: int, w: int, max_delta: int, iterations: int, seed: int) -> np.ndarray:
    """Index map of the package's pixel walk: ``walked[p] = x.reshape(H * W, C)[index[p]]``; int32 [H * W]."""
    d = max_delta
    base, walked = _walk_geometry(h, w, d)
    nh, nw = base.shape
    per_walk = base.size * 2
    draws = numba_randint_stream(seed, per_walk * iterations, -d, d)
    index = None
    for it in range(iterations):
        pairs = draws[it * per_walk:(it + 1) * per_walk].reshape(nh, nw, 2)[::-1, ::-1]  # walk order is descending
        # (dx, dy) in that order; the source offset dy * W + dx is > 0 exactly when (dy, dx) > (0, 0), i.e. when the
        # source comes earlier in the walk (|dx| < W)
        offset = pairs[..., 1].astype(np.int32) * np.int32(w) + pairs[..., 0]
        source = base + offset
        target = np.arange(h * w, dtype=np.int32)
        target.reshape(h, w)[d + 1:h - d + 1, d + 1:w - d + 1] = source
        linked = np.zeros(h * w, bool)
        linked.reshape(h, w)[d + 1:h - d + 1, d + 1:w - d + 1] = (offset > 0) & walked[source]
        todo = np.flatnonzero(linked)
        while todo.size:  # pointer doubling: target <- target[target] where the link continues
            nxt = target[todo]
            target[todo] = target[nxt]
            still = linked[nxt]
            linked[todo] = still
            todo = todo[still]
        index = target if index is None else index[target]
    return index
