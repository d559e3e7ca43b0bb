"""Paired bootstrap of mIoU differences: known constant differences, coverage/width, vectorisation, id matching."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.bootstrap import cells_miou, match_ids, miou_from_sums, paired_difference, resample_counts
from repsep.errors import UserError


def test_resample_counts_are_multinomial_draws_fixed_by_seed():
    counts = resample_counts(7, 50, seed=3)
    assert counts.shape == (50, 7)
    assert (counts.sum(1) == 7).all()
    np.testing.assert_array_equal(counts, resample_counts(7, 50, seed=3))
    assert not np.array_equal(counts, resample_counts(7, 50, seed=4))
    # each image is drawn 1 time per resample on average
    assert abs(resample_counts(20, 2000, seed=0).mean() - 1.0) < 1e-12


def test_miou_from_sums_skips_classes_with_zero_union():
    # class 0: 1/2, class 1: 0/4 (predicted, absent from GT: counts as 0), class 2: never present -> skipped
    assert miou_from_sums(np.array([1.0, 0.0, 0.0]), np.array([2.0, 4.0, 0.0])) == pytest.approx(25.0)


def test_constant_difference_gives_a_collapsed_interval():
    rng = np.random.default_rng(0)
    n, c = 40, 5
    union = np.tile(np.array([100, 200, 50, 400, 80]), (n, 1))  # every image has the same union per class
    inter_a = (rng.uniform(0.2, 0.8, size=(n, c)) * union).astype(np.int64)
    inter_b = inter_a + 10  # B gains 10 pixels of intersection in every class of every image
    expected = 100 * np.mean(10 / union[0])
    iv = paired_difference([(inter_a, union)], [(inter_b, union)], resamples=500, seed=1)
    assert iv.estimate == pytest.approx(expected, abs=1e-9)
    assert iv.low == pytest.approx(expected, abs=1e-9)
    assert iv.high == pytest.approx(expected, abs=1e-9)


def test_noisy_difference_interval_covers_truth_with_expected_width():
    rng = np.random.default_rng(1)
    n, c, u, w, shift = 400, 4, 10_000, 0.2, 0.03
    union = np.full((n, c), u, dtype=np.int64)
    a = rng.uniform(0.5 - w, 0.5 + w, size=(n, c))
    b = rng.uniform(0.5 - w, 0.5 + w, size=(n, c)) + shift  # independent per-image noise, true gain 3 points
    iv = paired_difference([((a * u).astype(np.int64), union)], [((b * u).astype(np.int64), union)],
                           resamples=1000, seed=0)
    # mIoU difference = mean of n*c independent differences of two U(-w, w): sd of one = sqrt(2 w^2 / 3)
    se = 100 * np.sqrt(2 * w**2 / 3 / (n * c))
    assert iv.low < 100 * shift < iv.high
    assert 0.8 * 2 * 1.96 * se < iv.high - iv.low < 1.2 * 2 * 1.96 * se


def test_pairing_narrows_the_interval_when_models_share_image_difficulty():
    rng = np.random.default_rng(2)
    n, c, u = 200, 3, 1000
    union = np.full((n, c), u, dtype=np.int64)
    difficulty = rng.uniform(0.2, 0.8, size=(n, 1))  # shared by both models
    a = np.clip(difficulty + rng.normal(0, 0.01, (n, c)), 0, 1)
    b = np.clip(difficulty + 0.02 + rng.normal(0, 0.01, (n, c)), 0, 1)
    cells_a, cells_b = [((a * u).astype(np.int64), union)], [((b * u).astype(np.int64), union)]
    paired = paired_difference(cells_a, cells_b, resamples=1000, seed=0)
    # unpaired: B's images resampled with other draws than A's
    unpaired = cells_miou(cells_b, resample_counts(n, 1000, 1)) - cells_miou(cells_a, resample_counts(n, 1000, 0))
    lo, hi = np.percentile(unpaired, [2.5, 97.5])
    assert paired.low < 2.0 < paired.high
    assert (paired.high - paired.low) * 5 < hi - lo


def test_vectorised_bootstrap_equals_a_loop_over_resamples():
    rng = np.random.default_rng(3)
    n, c = 15, 4
    union = rng.integers(1, 500, size=(n, c))
    union[:, 3] = 0  # a class that never occurs
    cells = [((union * rng.uniform(0, 1, (n, c))).astype(np.int64), union)
             for _ in range(2)]
    counts = resample_counts(n, 20, seed=5)
    vector = cells_miou(cells, counts)
    for r in range(20):
        idx = np.repeat(np.arange(n), counts[r].astype(int))  # the images drawn in resample r
        loop = np.mean([miou_from_sums(i[idx].sum(0), u[idx].sum(0)) for i, u in cells])
        assert vector[r] == pytest.approx(loop, rel=1e-12)


def test_group_estimate_is_the_mean_of_cell_differences():
    rng = np.random.default_rng(4)
    union = rng.integers(100, 200, size=(10, 3))
    cells = [((union * rng.uniform(0, 1, union.shape)).astype(np.int64), union) for _ in range(4)]
    a, b = cells[:2], cells[2:]
    iv = paired_difference(a, b, resamples=10, seed=0)
    expected = np.mean([cells_miou([cb]) - cells_miou([ca]) for ca, cb in zip(a, b, strict=True)])
    assert iv.estimate == pytest.approx(expected, abs=1e-12)


def test_interval_is_deterministic_for_a_seed():
    rng = np.random.default_rng(5)
    union = rng.integers(100, 200, size=(30, 3))
    a = [((union * rng.uniform(0, 1, union.shape)).astype(np.int64), union)]
    b = [((union * rng.uniform(0, 1, union.shape)).astype(np.int64), union)]
    assert paired_difference(a, b, seed=7) == paired_difference(a, b, seed=7)
    assert paired_difference(a, b, seed=7) != paired_difference(a, b, seed=8)


def test_match_ids_aligns_permuted_ids_and_rejects_different_sets():
    oa, ob = match_ids(["b", "c", "a"], ["c", "a", "b"], "A", "B")
    assert np.array(["b", "c", "a"])[oa].tolist() == np.array(["c", "a", "b"])[ob].tolist() == ["a", "b", "c"]
    with pytest.raises(UserError, match="A and B: per-image ids differ .*'c'"):
        match_ids(["a", "b", "c"], ["a", "b", "d"], "A", "B")
    with pytest.raises(UserError, match="B: per-image ids are not unique"):
        match_ids(["a", "b"], ["a", "a"], "A", "B")
