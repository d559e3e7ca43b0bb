"""glass_blur's vectorised pixel walk (exact against the package's numba walk) and spatter's layers.

The ports themselves are checked against the reference in tests/test_torch_backend.py with the other ports:
glass_blur pixel for pixel (within 2 grey levels: its two blurs run in float32), spatter in distribution.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from corruptions.backends import torch_ops as ops
from corruptions.backends.torch_blur import GLASS_BLUR, gaussian_cv2, gaussian_small
from corruptions.backends.torch_glass import numba_randint_stream, shuffle_index
from corruptions.backends.torch_weather import spatter

numba = pytest.importorskip("numba")


@numba.njit
def _numba_draws(seed, count, low, high):
    np.random.seed(seed)
    out = np.empty(count, np.int64)
    for i in range(count // 2):
        a, b = np.random.randint(low, high, size=(2,))
        out[2 * i], out[2 * i + 1] = a, b
    return out


@pytest.mark.parametrize("delta", [1, 2, 3, 4])  # 3: a range of 6, so a quarter of the draws are rejected
def test_randint_stream_is_numbas(delta):
    for seed in (0, 12345, 2 ** 32 - 1):
        expected = _numba_draws(seed, 5000, -delta, delta)
        assert np.array_equal(numba_randint_stream(seed, 5000, -delta, delta), expected), (delta, seed)


@pytest.mark.parametrize("size", [(32, 48), (45, 77), (64, 128)])
def test_shuffle_index_is_the_packages_walk_exactly(size):
    from imagecorruptions.corruptions import _shuffle_pixels_njit_glass_blur as walk

    h, w = size
    x = np.random.RandomState(1).randint(0, 256, (h, w, 3)).astype(np.uint8)
    for _, delta, iterations in GLASS_BLUR:
        for seed in (3, 77):
            expected = walk(h, w, x.copy(), (0.0, delta, iterations), seed)
            ours = x.reshape(-1, 3)[shuffle_index(h, w, delta, iterations, seed)].reshape(h, w, 3)
            assert np.array_equal(ours, expected), (size, delta, iterations, seed)


def test_shuffle_index_known_answers():
    # max_delta 1: dx, dy in {-1, 0}, never a pixel already written, so each walked pixel copies its own draw
    h, w = 6, 7
    index = shuffle_index(h, w, 1, 1, 5)
    draws = numba_randint_stream(5, (h - 2) * (w - 2) * 2, -1, 1).reshape(h - 2, w - 2, 2)
    for i, row in enumerate(range(h - 1, 1, -1)):
        for j, col in enumerate(range(w - 1, 1, -1)):
            dx, dy = draws[i, j]
            assert index[row * w + col] == (row + dy) * w + col + dx
    untouched = np.ones((h, w), bool)
    untouched[2:h, 2:w] = False
    assert np.array_equal(index.reshape(h, w)[untouched], np.arange(h * w).reshape(h, w)[untouched])


@pytest.mark.parametrize("sigma", [0.7, 1.5, 4.0, 6.0])
def test_small_and_cv2_gaussians_are_scipys(sigma):
    plane = np.random.RandomState(2).rand(40, 70)
    expected = gaussian_filter(plane, sigma, mode="nearest", truncate=4.0)
    ours = gaussian_small(torch.from_numpy(plane)[None, None].float(), sigma)[0, 0].double().numpy()
    assert np.abs(ours - expected).max() < 1e-5
    assert np.abs(gaussian_cv2(plane.astype(np.float32), sigma) - expected).max() < 1e-5
    rgb = np.random.RandomState(3).rand(40, 70, 3)
    per_channel = np.stack([gaussian_filter(rgb[..., c], sigma, mode="nearest", truncate=4.0) for c in range(3)], -1)
    assert np.abs(gaussian_cv2(rgb.astype(np.float32), sigma) - per_channel).max() < 1e-5


def test_spatter_colours_and_flat_regions():
    grey = torch.full((2, 3, 64, 96), 100, dtype=torch.uint8)
    gens = ops.generators([1, 2], torch.device("cpu"))
    water = spatter(grey, 2, gens)
    assert (water >= 100 - 1e-3).all()  # water only adds (turquoise: blue and green rise more than red)
    added = (water - 100).sum(dim=(0, 2, 3))
    assert added[1] > added[0] and added[2] > added[0] and added[0] > 0
    mud = spatter(grey, 5, ops.generators([1, 2], torch.device("cpu")))
    assert (mud <= 100 + 1e-3).all()  # mud blends towards brown (63, 42, 20), darker than grey 100
    assert (mud < 99).any()
