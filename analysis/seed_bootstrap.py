"""Two-level bootstrap over training seeds and test images, for differences of mIoU between two models.

A model trained with S seeds and evaluated on the same N images gives S sets of per-image areas. Two sources of
variation make a difference between two models uncertain: which seeds were trained (the training run's own
randomness) and which images were drawn (the test sample). An interval over images alone ignores the first; an
interval over the S per-seed means alone ignores the second. Each resample here draws

1. the seeds of each model with replacement (independently for the two models: their trainings are independent),
2. one vector of image counts shared by every seed of both models (the images are paired, as in
   :func:`analysis.bootstrap.paired_difference`),

and recomputes ``mean over drawn seeds of mIoU(B) - mean over drawn seeds of mIoU(A)``, each mIoU from the areas
summed over the drawn images (mmseg convention). For an additive model ``p[m, s, i] = mu_m + a[m, s] + b[m, i]``
the bootstrap variance of the difference is ``var(a_A)/S_A + var(a_B)/S_B + var(b_B - b_A)/N`` (population
variances): both components are covered, which `tests/test_seed_bootstrap.py` checks on constructed data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.bootstrap import Cell, cells_miou, resample_counts

MIN_SEEDS = 2
MIN_IMAGES = 20
"""Intervals from fewer seeds or images than these are marked as unreliable in the report."""


@dataclass(frozen=True)
class SeedInterval:
    """A seed-and-image bootstrap interval of ``mIoU(B) - mIoU(A)`` (points), with the per-model seed spread."""

    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int
    seeds_a: int
    seeds_b: int
    num_images: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0 (and was computed from enough seeds and images to mean something)."""
        return self.reliable and (self.low > 0 or self.high < 0)

    @property
    def reliable(self) -> bool:
        return min(self.seeds_a, self.seeds_b) >= MIN_SEEDS and self.num_images >= MIN_IMAGES

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "confidence": self.confidence,
                "resamples": self.resamples, "seeds_a": self.seeds_a, "seeds_b": self.seeds_b,
                "num_images": self.num_images, "reliable": self.reliable, "significant": self.significant}


def seed_mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for a single seed) of per-seed scores."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")


def _per_seed_resampled(seeds: Sequence[Sequence[Cell]], counts: np.ndarray) -> np.ndarray:
    """mIoU (averaged over cells) of every seed under every image resample: float64 [S, R]."""
    return np.stack([np.asarray(cells_miou(cells, counts), dtype=np.float64) for cells in seeds])


def two_level_difference(seeds_a: Sequence[Sequence[Cell]], seeds_b: Sequence[Sequence[Cell]], *,
                         resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> SeedInterval:
    """Interval of ``mean_s mIoU(B_s) - mean_s mIoU(A_s)`` over seeds and images (module docstring).

    ``seeds_a[s]`` is the list of cells (``(intersect [N, C], union [N, C])``) of seed ``s`` of model A; every
    cell of every seed of both models holds the same N images in the same order (match ids beforehand).
    """
    if not seeds_a or not seeds_b or any(not cells for cells in (*seeds_a, *seeds_b)):
        raise ValueError("two_level_difference needs at least one seed with at least one cell per model")
    shapes = {arr.shape for cells in (*seeds_a, *seeds_b) for cell in cells for arr in cell}
    if len(shapes) != 1:
        raise ValueError(f"per-image areas differ in shape: {sorted(shapes)}")
    num_images = next(iter(shapes))[0]
    estimate = float(np.mean([cells_miou(c) for c in seeds_b]) - np.mean([cells_miou(c) for c in seeds_a]))
    rng = np.random.default_rng([seed, 1])  # seed draws; the image counts use `seed` as paired_difference does
    counts = resample_counts(num_images, resamples, seed)
    per_a, per_b = _per_seed_resampled(seeds_a, counts), _per_seed_resampled(seeds_b, counts)
    columns = np.arange(resamples)
    draw_a = rng.integers(0, len(seeds_a), size=(len(seeds_a), resamples))
    draw_b = rng.integers(0, len(seeds_b), size=(len(seeds_b), resamples))
    diffs = per_b[draw_b, columns].mean(axis=0) - per_a[draw_a, columns].mean(axis=0)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.nanpercentile(diffs, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return SeedInterval(estimate, float(low), float(high), confidence, resamples, len(seeds_a), len(seeds_b),
                        num_images)
