"""Paired bootstrap over images for differences of dataset-level mIoU.

Images are resampled with replacement; for each resample the per-image intersect/union areas are summed over the
drawn images (mmseg convention: areas accumulated over the dataset, a class with zero union is NaN and skipped in
the mean) and the mIoU of both models is recomputed from the *same* drawn images. A resample is a vector of counts
(how often each image was drawn), so all resamples at once are one matrix product ``counts [R, N] @ areas [N, C]``.

The areas are integers well below 2**53, so the float64 sums are exact and the result does not depend on BLAS
summation order: the intervals are bit-identical across machines for a given seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from repsep.errors import UserError

Cell = tuple[np.ndarray, np.ndarray]  # (intersect [N, C], union [N, C]) of one evaluated setting


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile bootstrap interval (mIoU points, 0-100)."""

    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int

    def to_dict(self) -> dict[str, float | int]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "confidence": self.confidence,
                "resamples": self.resamples}


def resample_counts(num_images: int, resamples: int, seed: int) -> np.ndarray:
    """Counts of each image in each bootstrap resample: float64 [resamples, num_images], rows sum to num_images."""
    if num_images < 1 or resamples < 1:
        raise UserError(f"bootstrap needs at least one image and one resample (got {num_images}, {resamples})")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_images, size=(resamples, num_images))
    flat = draws + num_images * np.arange(resamples)[:, None]
    return np.bincount(flat.ravel(), minlength=resamples * num_images).reshape(resamples, num_images).astype(np.float64)


def miou_from_sums(intersect: np.ndarray, union: np.ndarray) -> np.ndarray:
    """mIoU in percent from summed areas ``[..., C]``; classes with zero union are skipped (NaN if all are)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        iou = np.where(union > 0, intersect / np.where(union > 0, union, 1), np.nan)
        return 100.0 * np.nanmean(iou, axis=-1)


def cells_miou(cells: Sequence[Cell], counts: np.ndarray | None = None) -> np.ndarray | float:
    """Mean over cells of the dataset-level mIoU; with ``counts [R, N]`` one value per resample (``[R]``)."""
    values = []
    for intersect, union in cells:
        if counts is None:
            values.append(miou_from_sums(intersect.sum(0, dtype=np.float64), union.sum(0, dtype=np.float64)))
        else:
            values.append(miou_from_sums(counts @ intersect.astype(np.float64), counts @ union.astype(np.float64)))
    return np.mean(values, axis=0)


def paired_difference(cells_a: Sequence[Cell], cells_b: Sequence[Cell], *, resamples: int = 1000, seed: int = 0,
                      confidence: float = 0.95) -> Interval:
    """Interval for ``mIoU(b) - mIoU(a)``, each mIoU averaged over its cells, images resampled jointly.

    Every cell of both models must hold the same images in the same order (``[N, C]`` areas, matched by id
    beforehand); the same resampled image indices are used in every cell, so the interval accounts for the
    correlation between models and between corruptions of one image.
    """
    if not cells_a or len(cells_a) != len(cells_b):
        raise ValueError("paired_difference needs the same non-zero number of cells for both models")
    shapes = {arr.shape for cell in (*cells_a, *cells_b) for arr in cell}
    if len(shapes) != 1:
        raise ValueError(f"per-image areas differ in shape: {sorted(shapes)}")
    num_images = next(iter(shapes))[0]
    estimate = float(cells_miou(cells_b) - cells_miou(cells_a))
    counts = resample_counts(num_images, resamples, seed)
    diffs = cells_miou(cells_b, counts) - cells_miou(cells_a, counts)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.nanpercentile(diffs, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return Interval(estimate, float(low), float(high), confidence, resamples)


def match_ids(ids_a: Sequence[str], ids_b: Sequence[str], where_a: str, where_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays that put both id lists in one common (sorted) order; differing id sets are a UserError."""
    ids_a, ids_b = np.asarray(ids_a).astype(str), np.asarray(ids_b).astype(str)
    for ids, where in ((ids_a, where_a), (ids_b, where_b)):
        if len(np.unique(ids)) != len(ids):
            raise UserError(f"{where}: per-image ids are not unique")
    if set(ids_a.tolist()) != set(ids_b.tolist()):
        only_a = sorted(set(ids_a.tolist()) - set(ids_b.tolist()))
        only_b = sorted(set(ids_b.tolist()) - set(ids_a.tolist()))
        example = (only_a or only_b)[0]
        raise UserError(f"{where_a} and {where_b}: per-image ids differ ({len(only_a)} only in the first, "
                        f"{len(only_b)} only in the second, e.g. {example!r}); evaluate both on the same images")
    return np.argsort(ids_a, kind="stable"), np.argsort(ids_b, kind="stable")


def strata_seeds(seed: int, count: int) -> list[int]:
    """One resampling seed per stratum (dataset), derived from ``seed``: stratum ``k`` always draws the same."""
    return [int(s) for s in np.random.SeedSequence([seed, count]).generate_state(count)]


def stratified_mean_difference(strata_a: Sequence[Cell], strata_b: Sequence[Cell], *, resamples: int = 1000,
                               seed: int = 0, confidence: float = 0.95) -> Interval:
    """Interval for the difference of the *mean over strata* of mIoU, ``mean_k mIoU_k(b) - mean_k mIoU_k(a)``.

    Each stratum (a dataset of its own, with its own images) is resampled on its own with the seeds of
    :func:`strata_seeds`; within a stratum the same draws serve both models (paired). Stratum ``k`` of both models
    must hold the same images in the same order (``[N_k, C]`` areas)."""
    if not strata_a or len(strata_a) != len(strata_b):
        raise ValueError("stratified_mean_difference needs the same non-zero number of strata for both models")
    estimate = float(np.mean([cells_miou([b]) - cells_miou([a]) for a, b in zip(strata_a, strata_b, strict=True)]))
    diffs = np.zeros(resamples)
    for (a, b), s in zip(zip(strata_a, strata_b, strict=True), strata_seeds(seed, len(strata_a)), strict=True):
        if a[0].shape != b[0].shape:
            raise ValueError(f"per-image areas differ in shape: {a[0].shape} vs {b[0].shape}")
        counts = resample_counts(a[0].shape[0], resamples, s)
        diffs += (cells_miou([b], counts) - cells_miou([a], counts)) / len(strata_a)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.nanpercentile(diffs, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return Interval(estimate, float(low), float(high), confidence, resamples)
