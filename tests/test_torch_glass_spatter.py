"""glass_blur's pixel walk (exact against the package's numba walk) and spatter's layers.

The ports themselves are checked against the reference in tests/test_torch_backend.py with the other ports:
glass_blur pixel for pixel (within 2 grey levels: its two blurs run in float32), spatter in distribution.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from corruptions.backends import torch_ops as ops
from corruptions.backends.numba_glass import shuffle_index
from corruptions.backends.torch_blur import GLASS_BLUR, gaussian_cv2, gaussian_small
from corruptions.backends.torch_weather import spatter


@numba.njit
def _numba_draws(seed, count, low, high):
    np.random.seed(seed)
    out = np.empty(count, np.int64)
    for i in range(count // 2):
        a, b = np.random.randint(low, high, size=(2,))
        out[2 * i], out[2 * i + 1] = a, b
    return out


@pytest.mark.parametrize("size", [(32, 48), (45, 77), (64, 128)])
def test_shuffle_index_is_the_packages_walk_exactly(size):
    from imagecorruptions.corruptions import _shuffle_pixels_njit_glass_blur as walk

    h, w = size
    x = np.random.RandomState(1).randint(0, 256, (h, w, 3)).astype(np.uint8)
    for _, delta, iterations in GLASS_BLUR:
        for seed in (3, 77, 2 ** 32 - 1):
            expected = walk(h, w, x.copy(), (0.0, delta, iterations), seed)
            ours = x.reshape(-1, 3)[shuffle_index(h, w, delta, iterations, seed)].reshape(h, w, 3)
            assert np.array_equal(ours, expected), (size, delta, iterations, seed)


@pytest.mark.parametrize("delta", [1, 3])  # 3: a range of 6, so a quarter of numba's draws are rejected
def test_shuffle_index_is_the_walk_written_out(delta):
    # the same walk in plain Python on an index map, with the draws from numba's own generator (over 624 draws:
    # the loop's MT19937 refills its state at least once)
    h, w, iterations, seed = 20, 30, 2, 5
    draws = _numba_draws(seed, (h - 2 * delta) * (w - 2 * delta) * 2 * iterations, -delta, delta)
    index, k = list(range(h * w)), 0
    for _ in range(iterations):
        for y in range(h - delta, delta, -1):
            for x in range(w - delta, delta, -1):
                index[y * w + x] = index[(y + draws[k + 1]) * w + x + draws[k]]
                k += 2
    assert len(draws) > 624
    assert shuffle_index(h, w, delta, iterations, seed).tolist() == index
    assert index != list(range(h * w))


def test_shuffle_index_refuses_seeds_numba_would_wrap():
    with pytest.raises(ValueError, match="2\\*\\*32"):
        shuffle_index(40, 50, 2, 1, 2 ** 32)
    with pytest.raises(ValueError):
        shuffle_index(40, 50, 2, 1, -1)


def test_glass_blur_cpu_loop_is_the_numpy_pipeline():
    # blur (OpenCV, float32) -> uint8 -> the walk's gather -> blur -> uint8, written out in NumPy
    from corruptions.backends.torch_backend import TorchBackend
    from repsep.data.synthcity import image_rng, render_scene

    images = np.stack([render_scene(image_rng(0, "val", i), (48, 80))[0] for i in range(2)])
    for severity, (sigma, delta, iterations) in enumerate(GLASS_BLUR, start=1):
        ours = TorchBackend(cpu_batch=2).corrupt_batch(torch.from_numpy(images), "glass_blur", severity, [3, 4])
        for b, seed in enumerate((3, 4)):
            first = gaussian_cv2(images[b].astype(np.float32) * np.float32(1 / 255), sigma)
            first = np.clip(first * 255, 0, 255).astype(np.uint8)
            walked = first.reshape(-1, 3)[shuffle_index(48, 80, delta, iterations, seed)].reshape(48, 80, 3)
            second = gaussian_cv2(walked.astype(np.float32) * np.float32(1 / 255), sigma)
            expected = torch.from_numpy(second).clamp_(0, 1).mul_(255).to(torch.uint8).numpy()
            assert np.array_equal(ours[b].numpy(), expected), severity



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
