"""Deterministic 2-D t-SNE of class-balanced token samples (one embedding per model and layer).

Protocol (reference note 3.1 / A2): at most ``per_class`` tokens per class drawn with a fixed seed, rows
L2-normalised (cosine geometry), PCA to ``pca_dims`` dimensions, then t-SNE with perplexity 30 and PCA
initialisation. openTSNE (FFT-accelerated gradients, fast past ~5k points) is used when installed, else
scikit-learn's Barnes-Hut ``TSNE``. The embedding is a picture only: separation numbers come from
:mod:`analysis.separation` in the original feature space.
"""

from __future__ import annotations

import numpy as np


def balanced_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of at most ``per_class`` entries of every class, drawn without replacement with a fixed seed.

    Args:
        labels: ``[n]`` int class ids.

    Returns:
        Sorted int64 indices into ``labels``.
    """
    rng = np.random.default_rng(seed)
    keys = rng.random(len(labels))
    order = np.lexsort((keys, labels))  # by class, then by random key
    sorted_labels = labels[order]
    first = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.arange(len(labels)) - first
    return np.sort(order[rank < per_class]).astype(np.int64)


def pca_reduce(x: np.ndarray, dims: int = 50) -> np.ndarray:
    """Project centred rows onto their top ``dims`` principal axes (sign fixed: largest loading positive).

    Args:
        x: ``[n, D]``; returned centred and unchanged in width when ``D <= dims``.

    Returns:
        float64 ``[n, min(dims, D, n)]``.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    if x.shape[1] <= dims:
        return x
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    vt = vt[:dims]
    vt *= np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])[:, None]
    return x @ vt.T


def tsne_embed(features: np.ndarray, seed: int = 0, perplexity: float = 30.0, pca_dims: int = 50,
               n_jobs: int | None = None, backend: str = "auto") -> np.ndarray:
    """2-D t-SNE embedding of ``[n, D]`` features (L2-normalised, PCA-reduced first).

    Args:
        features: ``[n, D]`` tokens, ``n > 3 * perplexity`` is advisable (perplexity is clipped to ``(n - 1) / 3``).
        seed: fixes neighbour search, initialisation and optimisation; equal inputs give equal outputs.
        perplexity: effective number of neighbours.
        pca_dims: PCA width before t-SNE.
        n_jobs: threads; None: 1 below 5000 points (thread start-up costs more than it saves there, badly so on
            a busy machine), else 2.
        backend: ``opentsne``, ``sklearn`` or ``auto`` (openTSNE when importable).

    Returns:
        float32 ``[n, 2]``.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = pca_reduce(x, pca_dims)
    if n_jobs is None:
        n_jobs = 1 if len(x) < 5000 else 2
    perplexity = min(perplexity, max(1.0, (len(x) - 1) / 3.0))
    if backend == "auto":
        try:
            import openTSNE  # noqa: F401
            backend = "opentsne"
        except ImportError:
            backend = "sklearn"
    if backend == "opentsne":
        from openTSNE import TSNE

        emb = TSNE(n_components=2, perplexity=perplexity, initialization="pca", random_state=seed, n_jobs=n_jobs,
                   verbose=False).fit(x)
        return np.asarray(emb, dtype=np.float32)
    if backend == "sklearn":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        # the Barnes-Hut gradient runs on OpenMP threads that ignore n_jobs; cap them too
        with threadpool_limits(limits=n_jobs):
            return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=n_jobs,
                        learning_rate="auto").fit_transform(x).astype(np.float32)
    raise ValueError(f"backend must be auto, opentsne or sklearn, got {backend!r}")
