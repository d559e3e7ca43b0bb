"""The two-level (seeds, then images) bootstrap on constructed data with known variance components."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.bootstrap import paired_difference
from analysis.seed_bootstrap import seed_mean_sd, two_level_difference

UNION = 1_000_000  # one class, the same union in every image: mIoU = 100 * mean_i p_i exactly (up to rounding)


def _standard(n: int, rng: np.random.Generator) -> np.ndarray:
    """n values with mean exactly 0 and population variance exactly 1."""
    z = rng.standard_normal(n)
    z -= z.mean()
    return z / z.std()


def _model(mu: float, seed_effects: np.ndarray, image_effects: np.ndarray) -> list[list[tuple]]:
    """Per seed one cell of areas for p[s, i] = mu + a[s] + b[i] (fractions; mIoU is 100 x their mean)."""
    seeds = []
    for a in seed_effects:
        p = mu + a + image_effects
        intersect = np.round(p * UNION).astype(np.int64)[:, None]
        seeds.append([(intersect, np.full_like(intersect, UNION))])
    return seeds


def test_interval_covers_both_variance_components():
    rng = np.random.default_rng(0)
    seeds, images = 5, 400
    sigma_seed, sigma_image = 0.02, 0.04  # fractions: 2 and 4 mIoU points
    a_effects = sigma_seed * _standard(seeds, rng)
    b_effects = sigma_seed * _standard(seeds, rng)
    img_a = 0.5 * sigma_image * _standard(images, rng)
    diff = sigma_image * _standard(images, rng)
    model_a = _model(0.50, a_effects, img_a)
    model_b = _model(0.53, b_effects, img_a + diff)
    result = two_level_difference(model_a, model_b, resamples=4000, seed=0)
    assert result.estimate == pytest.approx(3.0, abs=1e-3)
    # bootstrap variance = var(a_A)/S + var(a_B)/S + var(b_B - b_A)/N, in points: 4/5 + 4/5 + 16/400
    expected_sd = np.sqrt(2 * (100 * sigma_seed) ** 2 / seeds + (100 * sigma_image) ** 2 / images)
    half_width = (result.high - result.low) / 2
    assert half_width == pytest.approx(1.96 * expected_sd, rel=0.08)
    assert result.reliable and result.significant
    # the image-only interval (one seed of each) misses the seed component by far
    image_only = paired_difference(model_a[0], model_b[0], resamples=4000, seed=0)
    image_half = (image_only.high - image_only.low) / 2
    assert image_half == pytest.approx(1.96 * 100 * sigma_image / np.sqrt(images), rel=0.08)
    assert image_half < half_width / 4


def test_no_seed_variation_reduces_to_the_image_bootstrap():
    rng = np.random.default_rng(1)
    images = 100
    img = 0.03 * _standard(images, rng)
    model_a = _model(0.4, np.zeros(3), img)
    model_b = _model(0.45, np.zeros(3), img * 1.5)
    two = two_level_difference(model_a, model_b, resamples=2000, seed=3)
    one = paired_difference(model_a[0], model_b[0], resamples=2000, seed=3)
    assert (two.low, two.high) == pytest.approx((one.low, one.high), abs=1e-9)


def test_single_seed_or_few_images_is_marked_unreliable():
    rng = np.random.default_rng(2)
    img = 0.03 * _standard(10, rng)
    result = two_level_difference(_model(0.4, np.zeros(1), img), _model(0.6, np.zeros(1), img), resamples=200)
    assert not result.reliable and not result.significant  # 20 points apart, but 1 seed and 10 images
    assert seed_mean_sd([1.0])[1] != seed_mean_sd([1.0])[1]  # NaN sd for one seed
    assert seed_mean_sd([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)))
