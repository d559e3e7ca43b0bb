"""The reference (imagecorruptions) backend: every corruption works at any size and is seeded per call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corruptions.backends import get_backend
from corruptions.backends.reference import ReferenceBackend
from corruptions.suite import ALL_CORRUPTIONS, SEVERITIES, STOCHASTIC
from repsep.errors import UserError


def _image(h: int = 64, w: int = 96) -> np.ndarray:
    """A smooth colourful test image with mid-tones (so every corruption visibly changes it)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 2) % 256, (yy * 4) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def backend() -> ReferenceBackend:
    return get_backend("reference")


@pytest.mark.parametrize("corruption", ALL_CORRUPTIONS)
def test_every_corruption_changes_image_and_keeps_shape(backend, corruption):
    image = _image()
    for severity in SEVERITIES:
        out = backend.corrupt(image, corruption, severity, seed=11)
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert (out != image).any(axis=-1).mean() > 0.02, (corruption, severity)
        again = backend.corrupt(image, corruption, severity, seed=11)
        assert np.array_equal(out, again), (corruption, severity)
    other = backend.corrupt(image, corruption, 3, seed=12)
    assert np.array_equal(other, backend.corrupt(image, corruption, 3, seed=11)) == (corruption not in STOCHASTIC)


def test_odd_sizes_and_small_images(backend):
    for shape in [(33, 47), (40, 300), (700, 40)]:  # frost: taller / wider than some textures
        image = _image(*shape)
        for corruption in ("frost", "fog", "snow", "motion_blur", "zoom_blur"):
            assert backend.corrupt(image, corruption, 5, seed=3).shape == image.shape
    with pytest.raises(UserError, match="at least 32x32"):
        backend.corrupt(_image(31, 64), "fog", 1, seed=0)


def test_gaussian_noise_and_contrast_known_answer(backend):
    image = _image()
    x = image / 255.0
    noise = np.random.RandomState(5).normal(size=x.shape, scale=0.18)  # severity 3: sigma 0.18
    expected = np.uint8(np.clip(x + noise, 0, 1) * 255)
    assert np.array_equal(backend.corrupt(image, "gaussian_noise", 3, seed=5), expected)
    means = x.mean(axis=(0, 1), keepdims=True)  # contrast severity 5: c = 0.05 around the channel means
    expected = np.uint8(np.clip((x - means) * 0.05 + means, 0, 1) * 255)
    assert np.array_equal(backend.corrupt(image, "contrast", 5, seed=0), expected)


def test_call_order_and_global_rng_do_not_matter(backend):
    image = _image()
    first = {c: backend.corrupt(image, c, 2, seed=99) for c in ("impulse_noise", "glass_blur", "snow", "frost")}
    np.random.seed(1234)
    before = np.random.get_state()[1].copy()
    backend.corrupt(image, "fog", 4, seed=7)
    assert np.array_equal(np.random.get_state()[1], before)  # the caller's global RNG is restored
    for c in reversed(first):
        assert np.array_equal(backend.corrupt(image, c, 2, seed=99), first[c]), c


def test_corrupt_batch_equals_per_image(backend):
    images = np.stack([_image(), _image()[::-1].copy()])
    out = backend.corrupt_batch(torch.from_numpy(images), "shot_noise", 4, seeds=[1, 2])
    assert out.dtype == torch.uint8 and out.shape == images.shape
    for b, seed in enumerate([1, 2]):
        assert np.array_equal(out[b].numpy(), backend.corrupt(images[b], "shot_noise", 4, seed))


def test_get_backend_rejects_unknown_names():
    with pytest.raises(UserError, match="unknown backend"):
        get_backend("opencv")
    with pytest.raises(UserError, match="not supported"):
        ReferenceBackend().corrupt(_image(), "rain", 1, seed=0)
