"""t-SNE helpers: balanced sampling, PCA and determinism (analysis.tsne)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.tsne import balanced_indices, pca_reduce, tsne_embed


def test_balanced_indices_caps_each_class_and_is_seeded():
    labels = np.array([0] * 50 + [1] * 3 + [2] * 20)
    idx = balanced_indices(labels, per_class=10, seed=0)
    assert np.bincount(labels[idx]).tolist() == [10, 3, 10]
    assert np.array_equal(idx, balanced_indices(labels, per_class=10, seed=0))
    assert not np.array_equal(idx, balanced_indices(labels, per_class=10, seed=1))


def test_pca_reduce_keeps_variance_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * np.array([10, 5, 1, 0.1, 0.1, 0.1])
    y = pca_reduce(x, dims=2)
    assert y.shape == (200, 2)
    assert y[:, 0].var() > y[:, 1].var() > 0
    assert pca_reduce(x, dims=50).shape == (200, 6)


@pytest.mark.parametrize("backend", ["opentsne", "sklearn"])
def test_tsne_is_deterministic_and_separates_blobs(backend):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 20)) * 5
    labels = np.repeat(np.arange(3), 40)
    x = centers[labels] + rng.normal(size=(120, 20))
    a = tsne_embed(x, seed=3, backend=backend, n_jobs=1)
    b = tsne_embed(x, seed=3, backend=backend, n_jobs=1)
    assert a.shape == (120, 2) and a.dtype == np.float32
    assert np.array_equal(a, b)
    # every point's nearest neighbour in 2-D shares its class
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() > 0.95
