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
        return ((rs.randint(0, 2 ** 32, size=count, dtype=np.uint32) & mask).astype(np.int8) + np.int8(low))
    parts, have = [], 0
    while have < count:
        size = int((count - have) * (mask + 1) / n * 1.01) + 64
        raw = (rs.randint(0, 2 ** 32, size=size, dtype=np.uint32) & mask).astype(np.int8)
        kept = raw[raw < n]
        parts.append(kept)
        have += len(kept)
    return np.concatenate(parts)[:count] + np.int8(low)


@lru_cache(maxsize=8)
def _walk_geometry(h: int, w: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the walked pixels in walk order [nh, nw] (int32) and the walked-rectangle mask [H*W]."""
    rows = np.arange(h - d, d, -1, dtype=np.int32)
    cols = np.arange(w - d, d, -1, dtype=np.int32)
    base = rows[:, None] * np.int32(w) + cols[None, :]
    walked = np.zeros(h * w, bool)
    walked[base.ravel()] = True
    base.setflags(write=False)
    walked.setflags(write=False)
    return base, walked


def shuffle_index(h: int, w: int, max_delta: int, iterations: int, seed: int) -> np.ndarray:
    """Index map of the package's pixel walk: ``walked[p] = x.reshape(H * W, C)[index[p]]``; int32 [H * W]."""
    d = max_delta
    base, walked = _walk_geometry(h, w, d)
    per_walk = base.size * 2
    draws = numba_randint_stream(seed, per_walk * iterations, -d, d)
    index = np.arange(h * w, dtype=np.int32)
    flat_base = base.ravel()
    for it in range(iterations):
        pairs = draws[it * per_walk:(it + 1) * per_walk]
        dx, dy = pairs[0::2], pairs[1::2]  # the package unpacks (dx, dy) in that order
        source = flat_base + dy.astype(np.int32) * np.int32(w) + dx
        target = np.arange(h * w, dtype=np.int32)
        target[flat_base] = source
        linked = np.zeros(h * w, bool)
        linked[flat_base] = ((dy > 0) | ((dy == 0) & (dx > 0))) & walked[source]
        todo = np.flatnonzero(linked)
        while todo.size:  # pointer doubling: target <- target[target] where the link continues
            nxt = target[todo]
            target[todo] = target[nxt]
            still = linked[nxt]
            linked[todo] = still
            todo = todo[still]
        index = index[target]
    return index
