"""Class-level separation of labelled tokens of one layer (reference note 3.1 and A1.6).

Features are L2-normalised per token first, so every quantity is scale-free and comparable between models.
With ``C'`` the classes present, ``mu_c`` the mean of class c and ``mu = (1/C') sum_c mu_c`` the class-balanced
global mean:

- intra-class variance ``(1/C') sum_c (1/n_c) sum_{i in c} ||f_i - mu_c||^2``
- inter-class variance ``(1/C') sum_c ||mu_c - mu||^2``
- ``ratio = inter / intra`` (trace Fisher ratio; higher = better separated)
- ``centroid_gap``: mean over classes of the Euclidean distance from ``mu_c`` to the nearest other class mean
- ``silhouette``: sklearn's mean silhouette (Euclidean on the normalised features, i.e. chordal distance), on a
  seeded subsample of ``silhouette_max`` tokens when there are more.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def class_separation(features: Tensor, labels: Tensor, silhouette_max: int = 5000, seed: int = 0) -> dict[str, float]:
    """Separation statistics of labelled tokens.

    Args:
        features: ``[n, D]`` tokens (any scale; normalised here).
        labels: ``[n]`` int class ids (no ignore entries).
        silhouette_max: largest number of tokens the silhouette is computed on (O(n^2) cost).
        seed: seed of the silhouette subsample.

    Returns:
        ``intra``, ``inter``, ``ratio``, ``centroid_gap``, ``silhouette`` (NaN where undefined: fewer than two
        classes, or as many classes as tokens; all NaN for no token), ``num_classes`` and ``num_tokens``.
    """
    from sklearn.metrics import silhouette_score

    if len(labels) == 0:
        return {"intra": math.nan, "inter": math.nan, "ratio": math.nan, "centroid_gap": math.nan,
                "silhouette": math.nan, "num_classes": 0, "num_tokens": 0}
    f = torch.nn.functional.normalize(features.to(torch.float64), dim=1)
    classes, inverse = torch.unique(labels, return_inverse=True)
    c, n = len(classes), len(labels)
    counts = torch.bincount(inverse, minlength=c).to(torch.float64)
    means = torch.zeros(c, f.shape[1], dtype=torch.float64).index_add_(0, inverse, f) / counts[:, None]
    sq_dist = (f - means[inverse]).square().sum(1)
    intra = float((torch.zeros(c, dtype=torch.float64).index_add_(0, inverse, sq_dist) / counts).mean())
    inter = float((means - means.mean(0)).square().sum(1).mean())
    out = {"intra": intra, "inter": inter, "ratio": inter / intra if intra > 0 else math.nan,
           "centroid_gap": math.nan, "silhouette": math.nan, "num_classes": c, "num_tokens": n}
    if c < 2:
        return out
    dist = torch.cdist(means, means)
    dist.fill_diagonal_(math.inf)
    out["centroid_gap"] = float(dist.min(1).values.mean())
    if n > silhouette_max:
        keep = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(n)[:silhouette_max]))
        f, labels = f[keep], labels[keep]
    k = len(torch.unique(labels))
    if 2 <= k < len(labels):
        out["silhouette"] = float(silhouette_score(f.numpy(), labels.numpy(), metric="euclidean"))
    return out
