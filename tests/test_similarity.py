"""Known-answer tests of the over-smoothing metrics (analysis.similarity)."""

from __future__ import annotations

import math

import pytest
import torch

from analysis.similarity import cka_matrix, cosine_stats, high_frequency_ratio, linear_cka, residual_ratio


def test_identical_tokens_have_abs_cos_one_and_zero_residual():
    x = torch.randn(1, 1, 16).expand(2, 10, 16).clone()
    x[1] *= -1  # anti-aligned copies are still collapsed for |cos|
    stats = cosine_stats(x)
    torch.testing.assert_close(stats["abs_cos"], torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(residual_ratio(x), torch.zeros(2, dtype=torch.float64))


def test_orthogonal_tokens_have_zero_cosine():
    x = torch.eye(8)[None]  # 8 mutually orthogonal tokens
    stats = cosine_stats(x)
    assert stats["abs_cos"].item() == 0.0
    assert stats["cos"].item() == 0.0


def test_signed_and_class_pair_cosines_hand_computed():
    # tokens a, a, -a, b with a ⟂ b; labels 0, 0, 1, unlabelled
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    x = torch.stack([a, a, -a, b])[None]
    labels = torch.tensor([[0, 0, 1, -1]])
    s = cosine_stats(x, labels)
    # ordered pairs i != j: 12; cosines: (0,1)=1 (0,2)=-1 (1,2)=-1, the rest 0, each counted twice
    assert s["abs_cos"].item() == pytest.approx(6 / 12)
    assert s["cos"].item() == pytest.approx(-2 / 12)
    assert s["same_cos"].item() == pytest.approx(1.0)  # pairs (0,1), (1,0)
    assert s["diff_cos"].item() == pytest.approx(-1.0)  # pairs (0,2), (1,2) and reverses
    assert s["same_pairs"].item() == 2 and s["diff_pairs"].item() == 4


def test_group_pair_cosines_use_only_pairs_inside_the_group():
    # same tokens as above; group "g" holds tokens 0 and 2 (labels 0 and 1) only
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    x = torch.stack([a, a, -a, b])[None]
    labels = torch.tensor([[0, 0, 1, -1]])
    s = cosine_stats(x, labels, {"g": torch.tensor([[0, -1, 1, -1]])})
    assert s["diff_cos_g"].item() == pytest.approx(-1.0) and s["diff_pairs_g"].item() == 2
    assert math.isnan(s["same_cos_g"].item()) and s["same_pairs_g"].item() == 0
    assert s["same_cos"].item() == pytest.approx(1.0)  # the plain statistics are unchanged
    only = cosine_stats(x, None, {"g": labels})
    assert "same_cos" not in only and only["same_cos_g"].item() == pytest.approx(1.0)


def test_image_without_same_class_pairs_is_nan():
    s = cosine_stats(torch.randn(1, 3, 4), torch.tensor([[0, 1, 2]]))
    assert math.isnan(s["same_cos"].item())
    assert s["diff_pairs"].item() == 6


def test_chunked_gram_matches_single_block(monkeypatch):
    torch.manual_seed(0)
    x, labels = torch.randn(2, 50, 8), torch.randint(-1, 3, (2, 50))
    full = cosine_stats(x, labels)
    monkeypatch.setattr("analysis.similarity._GRAM_ENTRIES", 2 * 50 * 7)  # 7 rows per chunk
    chunked = cosine_stats(x, labels)
    for key in full:
        torch.testing.assert_close(chunked[key], full[key])


def test_residual_ratio_hand_computed():
    x = torch.tensor([[[1.0, 0.0], [3.0, 0.0]]])  # mean (2, 0); residual norm sqrt(2); norm sqrt(10)
    assert residual_ratio(x).item() == pytest.approx(math.sqrt(2 / 10))


def test_high_frequency_ratio_constant_checkerboard_and_parseval():
    const = torch.full((1, 3, 4, 6), 2.5)
    yy, xx = torch.meshgrid(torch.arange(4), torch.arange(6), indexing="ij")
    checker = ((-1.0) ** (yy + xx)).expand(1, 3, 4, 6)
    assert high_frequency_ratio(const).item() == pytest.approx(0.0, abs=1e-12)
    assert high_frequency_ratio(checker).item() == pytest.approx(1.0)
    fmap = torch.randn(2, 5, 4, 6)
    tokens = fmap.flatten(2).transpose(1, 2)
    torch.testing.assert_close(high_frequency_ratio(fmap, cutoff=0.0), residual_ratio(tokens).square())
    # a larger cut-off puts more of the spectrum in the low band
    assert (high_frequency_ratio(fmap, 0.75) < high_frequency_ratio(fmap, 0.25)).all()
    with pytest.raises(ValueError):
        high_frequency_ratio(fmap, cutoff=1.5)


def test_linear_cka_invariances_and_independence():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 12, generator=g)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)
    assert linear_cka(x, torch.randn(500, 12, generator=g)) < 0.1
    # an anisotropic rescaling is not an invariance
    assert linear_cka(x, x * torch.linspace(0.1, 10, 12)) < 0.99
    m = cka_matrix({"a": x, "b": x @ q}, {"c": x})
    assert len(m) == 2 and m[0][0] == pytest.approx(1.0) and m[1][0] == pytest.approx(1.0)
