"""Known-answer tests of class separation (analysis.separation)."""

from __future__ import annotations

import math

import pytest
import torch

from analysis.separation import class_separation


def _two_arcs(theta: float, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0 at angles +-theta around the x axis, class 1 at +-theta around the y axis (before scaling)."""
    c, s = math.cos(theta), math.sin(theta)
    f = torch.tensor([[c, s], [c, -s], [s, c], [-s, c]], dtype=torch.float64) * scale
    return f, torch.tensor([0, 0, 1, 1])


def test_two_tight_clusters_exact_variances():
    theta = math.asin(0.1)
    out = class_separation(*_two_arcs(theta, scale=7.0))  # scale is removed by the L2 normalisation
    # mu_0 = (cos t, 0), mu_1 = (0, cos t): intra = sin^2 t, inter = cos^2 t / 2, nearest centroid sqrt(2) cos t
    assert out["intra"] == pytest.approx(0.01)
    assert out["inter"] == pytest.approx(0.99 / 2)
    assert out["ratio"] == pytest.approx(0.99 / 2 / 0.01)
    assert out["centroid_gap"] == pytest.approx(math.sqrt(2 * 0.99))
    # a = 2 sin t (the partner); b = mean distance to the other arc: sqrt2 and sqrt2 (cos t -+ sin t), the inner
    # points (facing the other arc) taking the minus sign, the outer ones the plus sign; two of each
    c = math.cos(theta)
    b_inner, b_outer = (math.sqrt(2) * (1 + c - 0.1) / 2, math.sqrt(2) * (1 + c + 0.1) / 2)
    assert out["silhouette"] == pytest.approx(((1 - 0.2 / b_inner) + (1 - 0.2 / b_outer)) / 2)
    assert out["num_classes"] == 2 and out["num_tokens"] == 4


def test_overlapping_classes_score_low():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(400, 16, generator=g)
    out = class_separation(f, torch.arange(400) % 4)
    assert out["ratio"] < 0.05
    assert abs(out["silhouette"]) < 0.1


def test_silhouette_subsample_is_seeded_and_single_class_is_nan():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(300, 8, generator=g) + 3 * torch.eye(8)[torch.arange(300) % 3]
    labels = torch.arange(300) % 3
    a = class_separation(f, labels, silhouette_max=100, seed=5)
    b = class_separation(f, labels, silhouette_max=100, seed=5)
    assert a == b
    one = class_separation(f, torch.zeros(300, dtype=torch.long))
    assert math.isnan(one["silhouette"]) and math.isnan(one["centroid_gap"]) and one["inter"] == 0.0


def test_no_tokens_gives_nan_not_an_error():
    out = class_separation(torch.empty(0, 4), torch.empty(0, dtype=torch.long))
    assert out["num_tokens"] == 0 and out["num_classes"] == 0
    assert all(math.isnan(out[k]) for k in ("intra", "inter", "ratio", "centroid_gap", "silhouette"))
