"""Paired bootstrap over images: each model's mIoU difference vs the baseline, clean and per corruption group.

Two results are paired only when they hold the same images of the same dataset (equal dataset fingerprint,
ids matched by name); otherwise the pair is skipped and said so. Intervals from fewer than
:data:`MIN_IMAGES` images or fewer than :data:`MIN_SEEDS` training seeds per model are marked.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from analysis.bootstrap import Interval, match_ids, paired_difference
from analysis.report.common import dataset_note
from analysis.report.reader import ModelEntry, Run, same_images
from analysis.report.tables_robustness import corruption_order
from analysis.tables import Column, Table
from corruptions.suite import group_of
from repsep.errors import UserError
from repsep.progress import progress_bar

MIN_IMAGES = 20
MIN_SEEDS = 2
FEW_IMAGES, FEW_SEEDS = "†", "‡"


def _npz(path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read per-image areas ({e})") from None


def _areas(data: Any, prefix: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        return data[f"{prefix}intersect"], data[f"{prefix}union"]
    except KeyError:
        raise UserError(f"{path}: no per-image '{prefix}intersect'/'{prefix}union' arrays") from None


def _ids(data: Any, path: Path) -> np.ndarray:
    if "ids" not in data:
        raise UserError(f"{path}: no 'ids' array")
    return data["ids"]


def _severity_keys(data: Any) -> dict[str, list[str]]:
    """{corruption: [severity, ...]} from the keys ``<corruption>/<severity>/intersect`` of a corrupt npz."""
    cells: dict[str, list[str]] = {}
    for key in data.files:
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "intersect" and parts[0] != "clean":
            cells.setdefault(parts[0], []).append(parts[1])
    return {c: sorted(s, key=int) for c, s in cells.items()}


def _difference(cells_a, cells_b, **kwargs) -> Interval:
    with warnings.catch_warnings():  # an undefined (all-NaN) mIoU gives a NaN interval, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return paired_difference(cells_a, cells_b, **kwargs)


def _pair(base: Run, other: Run, skipped: list[str]) -> tuple[Path, Path] | None:
    pa, pb = base.path / "per_image.npz", other.path / "per_image.npz"
    if not (pa.is_file() and pb.is_file()):
        return None
    if not same_images(base, other):
        skipped.append(f"{base.path} and {other.path} were not paired in the bootstrap: different datasets "
                       "(dataset_fingerprint)")
        return None
    return pa, pb


def bootstrap_comparisons(models: dict[str, ModelEntry], baseline: str | None, *, resamples: int, seed: int,
                          confidence: float = 0.95, skipped: list[str] | None = None
                          ) -> dict[str, dict[str, Interval]]:
    """{model: {setting: interval of mIoU(model) - mIoU(baseline)}}, settings ``clean`` and each group; pairs of
    different datasets are skipped and described in ``skipped``."""
    skipped = [] if skipped is None else skipped
    if baseline is None:
        return {}
    base = models[baseline]
    out: dict[str, dict[str, Interval]] = {}
    others = [m for m in models.values() if m.name != baseline]
    kwargs = {"resamples": resamples, "seed": seed, "confidence": confidence}
    for m in progress_bar(others, desc="bootstrap", unit="model"):
        res: dict[str, Interval] = {}
        pair, prefix = None, ""
        if m.eval_ss and base.eval_ss:
            pair = _pair(base.eval_ss, m.eval_ss, skipped)
        elif m.corrupt and base.corrupt:
            pair, prefix = _pair(base.corrupt, m.corrupt, skipped), "clean/"
        if pair is not None:
            pa, pb = pair
            da, db = _npz(pa), _npz(pb)
            oa, ob = match_ids(_ids(da, pa), _ids(db, pb), str(pa), str(pb))
            (ia, ua), (ib, ub) = _areas(da, prefix, pa), _areas(db, prefix, pb)
            res["clean"] = _difference([(ia[oa], ua[oa])], [(ib[ob], ub[ob])], **kwargs)
        if m.corrupt and base.corrupt:
            groups = pair if prefix == "clean/" else _pair(base.corrupt, m.corrupt, skipped)
            if groups is not None:
                res.update(_group_intervals(*groups, **kwargs))
        out[m.name] = res
    return out


def _group_intervals(pa: Path, pb: Path, *, resamples: int, seed: int, confidence: float) -> dict[str, Interval]:
    da, db = _npz(pa), _npz(pb)
    oa, ob = match_ids(_ids(da, pa), _ids(db, pb), str(pa), str(pb))
    ka, kb = _severity_keys(da), _severity_keys(db)
    common = {c: [s for s in ka[c] if s in kb.get(c, [])] for c in ka if c in kb}
    by_group: dict[str, list[str]] = {}
    for c in corruption_order({"_": {"per_corruption": common}}):
        by_group.setdefault(group_of(c), []).append(c)
    out = {}
    for group, names in by_group.items():
        cells_a, cells_b = [], []
        for c in names:
            for s in common[c]:
                (ia, ua), (ib, ub) = _areas(da, f"{c}/{s}/", pa), _areas(db, f"{c}/{s}/", pb)
                cells_a.append((ia[oa], ua[oa]))
                cells_b.append((ib[ob], ub[ob]))
        out[group] = _difference(cells_a, cells_b, resamples=resamples, seed=seed, confidence=confidence)
    return out


def _images(m: ModelEntry, setting: str) -> int | None:
    run = m.eval_ss if setting == "clean" and m.eval_ss is not None else m.corrupt
    return None if run is None else run.num_images


def uncertainty_table(intervals: dict[str, dict[str, Interval]], models: dict[str, ModelEntry], baseline: str,
                      confidence: float, seeds: int = 1) -> Table | None:
    """One row per (model, setting): Δ mIoU and its interval, the images it rests on, the training seeds per
    model, and the marks ``†`` (fewer than 20 images) and ``‡`` (fewer than 2 seeds)."""
    rows = []
    for name, per in intervals.items():
        for setting, iv in per.items():
            n = _images(models[name], setting)
            marks = (FEW_IMAGES if n is not None and n < MIN_IMAGES else "") + (FEW_SEEDS if seeds < MIN_SEEDS else "")
            rows.append((name, baseline, setting, iv.estimate, iv.low, iv.high, n, seeds, marks or None))
    if not rows:
        return None
    pct = f"{100 * confidence:g}%"
    resamples = next(iter(next(iv for iv in intervals.values() if iv).values())).resamples
    note = dataset_note(r for m in models.values() for r in (m.eval_ss, m.corrupt)) + (
        f"Images resampled with replacement ({resamples} resamples, the same draws for both models and every "
        "corruption x severity cell); dataset-level mIoU recomputed from summed per-image intersections and unions; "
        f"a group's mIoU is the mean over its cells. {FEW_IMAGES}: fewer than {MIN_IMAGES} images, the interval "
        f"understates the uncertainty; {FEW_SEEDS}: fewer than {MIN_SEEDS} training seeds per model, the interval "
        "covers image sampling only, not the variation between training runs.")
    return Table("uncertainty", f"Paired bootstrap: mIoU difference vs {baseline} ({pct} interval)", (
        Column("model"), Column("baseline"), Column("setting"), Column("Δ mIoU", "+.2f"),
        Column(f"{pct} low", "+.2f"), Column(f"{pct} high", "+.2f"), Column("images", "d"),
        Column("seeds", "d"), Column("marks")), tuple(rows), note=note)
