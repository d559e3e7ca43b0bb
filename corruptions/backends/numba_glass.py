"""Glass blur on the CPU (numba): the package's pixel walk and the gather between its two blurs.

glass_blur's walk, replayed exactly. The package (imagecorruptions-imaug, numba) walks the interior pixels
``h = H - d .. d + 1``, ``w = W - d .. d + 1`` (both descending, ``d`` = max_delta), ``iterations`` times, draws
``dx, dy = randint(-d, d, size=2)`` per pixel from numba's generator seeded with the call's seed, and runs
``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on array views: the first assignment copies the source pixel, the second
copies it back onto itself, so each step sets ``x[p] = x[s(p)]`` with the source as it is at that moment.
:func:`shuffle_index` runs the same loop, with the same MT19937 draws, on an int32 index map instead of the pixels,
so the shuffle is one gather on any device (at 1024x2048, severity 3, 6.3 M steps and 12.6 M draws: 60-100 ms on
one idle core, against 220-270 ms for the earlier vectorised form, NumPy's bulk MT19937 then pointer doubling).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from corruptions.backends.numba_kernels import F32, INV255, W255, ZERO, jit, to_uint8
from corruptions.backends.torch_ops import run_parallel

MT_N, MT_M = 624, 397  # MT19937's state length and shift


@jit
def _mt_refill(mt: np.ndarray) -> None:  # pragma: no cover (compiled)
    """MT19937's next 624 state words, in place (int64 holding uint32 values)."""
    for k in range(MT_N - 1):  # words from k + M >= N on read the already refilled start, as in the reference code
        y = (mt[k] & 0x80000000) | (mt[k + 1] & 0x7FFFFFFF)
        v = mt[k + MT_M - MT_N if k >= MT_N - MT_M else k + MT_M] ^ (y >> 1)
        mt[k] = v ^ 0x9908B0DF if y & 1 else v
    y = (mt[MT_N - 1] & 0x80000000) | (mt[0] & 0x7FFFFFFF)
    v = mt[MT_M - 1] ^ (y >> 1)
    mt[MT_N - 1] = v ^ 0x9908B0DF if y & 1 else v


def shuffle_index(h: int, w: int, max_delta: int, iterations: int, seed: int) -> np.ndarray:
    """glass_blur's walk on an index map: int32 [H * W], ``walked[p] = x.reshape(H * W, C)[index[p]]``.

    ``seed`` must lie in [0, 2**32) (numba would reduce a larger one modulo 2**32, the reference refuses it).
    """
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"glass_blur seed {seed}: must lie in [0, 2**32)")
    return _walk(h, w, max_delta, iterations, seed)


@jit
def _walk(h: int, w: int, d: int, iterations: int, seed: int) -> np.ndarray:  # pragma: no cover (compiled)
    """:func:`shuffle_index`'s loop.

    The draws are numba's ``np.random.randint(-d, d)`` after ``np.random.seed(seed)``: MT19937 seeded by
    init_genrand (NumPy's legacy integer seeding), each draw the low ``bit_length(2d - 1)`` bits of one tempered
    output, rejected while ``>= 2d``; per pixel dx, then dy.
    """
    mt = np.empty(MT_N, np.int64)
    mt[0] = seed & 0xFFFFFFFF
    for i in range(1, MT_N):
        mt[i] = (1812433253 * (mt[i - 1] ^ (mt[i - 1] >> 30)) + i) & 0xFFFFFFFF
    pos, n, mask, rest = MT_N, 2 * d, 0, 2 * d - 1
    while rest:
        mask, rest = mask * 2 + 1, rest >> 1
    index = np.arange(h * w).astype(np.int32)
    for _ in range(iterations):
        for y in range(h - d, d, -1):
            for x in range(w - d, d, -1):
                dx = dy = 0
                for j in range(2):
                    while True:
                        if pos == MT_N:
                            _mt_refill(mt)
                            pos = 0
                        r = mt[pos]
                        pos += 1
                        r ^= r >> 11
                        r ^= (r << 7) & 0x9D2C5680
                        r ^= (r << 15) & 0xEFC60000
                        r = (r ^ (r >> 18)) & mask
                        if r < n:
                            break
                    if j == 0:
                        dx = r - d
                    else:
                        dy = r - d
                p = y * w + x
                index[p] = index[p + dy * w + dx]
    return index


@jit
def _glass_gather(blurred, index, out, r0, r1):  # pragma: no cover (compiled)
    """out[p] = uint8(clip(blurred[index[p]] * 255)) * (1 / 255): the walk's gather between glass_blur's two blurs."""
    w = blurred.shape[1]
    for y in range(r0, r1):
        for i in range(w):
            q = index[y * w + i]
            for c in range(3):
                v = np.uint8(min(max(blurred[q // w, q % w, c] * W255, ZERO), W255))
                out[y, i, c] = F32(v) * INV255


@jit
def _unit_to_uint8(v, out, r0, r1):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(v.shape[1]):
            for c in range(3):
                out[y, i, c] = to_uint8(v[y, i, c])


def glass_blur(x: torch.Tensor, index: list[np.ndarray], sigma: float,
               blur: Callable[[np.ndarray, float], np.ndarray]) -> torch.Tensor:
    """blur -> uint8 -> the walk's gather ``index[b]`` -> blur again, as uint8 [B, 3, H, W] (channels_last)."""
    pixels = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
    out = np.empty_like(pixels)
    for b, image in enumerate(pixels):
        blurred = blur(np.multiply(image, INV255, dtype=np.float32), sigma)
        walked = np.empty_like(blurred)
        run_parallel(image.shape[0], lambda r0, r1, s=blurred, i=index[b], o=walked: _glass_gather(s, i, o, r0, r1))
        second = blur(walked, sigma)
        run_parallel(image.shape[0], lambda r0, r1, s=second, o=out[b]: _unit_to_uint8(s, o, r0, r1))
    return torch.from_numpy(out).permute(0, 3, 1, 2)
