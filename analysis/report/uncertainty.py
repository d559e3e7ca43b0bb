"""Each configuration's mIoU difference vs the baseline configuration, with an interval over seeds and images.

The intervals are the two-level bootstrap of :mod:`analysis.seed_bootstrap` (training seeds of each
configuration drawn with replacement, then images, the same image draws for both configurations, every seed and
every corruption x severity cell), clean and per corruption group. With one seed per configuration it is the
paired image bootstrap of :func:`analysis.bootstrap.paired_difference` (the same numbers). Results are paired only
when they hold the same images of the same dataset (equal dataset fingerprint, ids matched by name); otherwise
the pair is skipped and said so. Intervals from fewer than :data:`MIN_IMAGES` images or fewer than
:data:`MIN_SEEDS` training seeds per configuration are marked, and never called significant.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from analysis.bootstrap import Cell, match_ids
from analysis.report.common import dataset_note
from analysis.report.reader import Run, same_images
from analysis.report.seeds import SeedGroup
from analysis.report.tables_robustness import corruption_order
from analysis.seed_bootstrap import MIN_IMAGES, MIN_SEEDS, SeedInterval, two_level_difference
from analysis.tables import Column, Table
from corruptions.suite import group_of
from repsep.errors import UserError
from repsep.progress import progress_bar

FEW_IMAGES, FEW_SEEDS = "†", "‡"


class _Areas:
    """Per-image areas of result folders, read once, put in the order of a reference id list."""

    def __init__(self, reference: Path) -> None:
        self.reference = reference
        self.ref_ids = self._data(reference)["ids"]
        self._cache: dict[Path, Any] = {}

    @staticmethod
    def _data(path: Path) -> Any:
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: cannot read per-image areas ({e})") from None
        if "ids" not in data:
            raise UserError(f"{path}: no 'ids' array")
        return data

    def data(self, path: Path) -> Any:
        if path not in self._cache:
            self._cache[path] = self._data(path)
        return self._cache[path]

    def cell(self, path: Path, prefix: str) -> Cell:
        data = self.data(path)
        _, order = match_ids(self.ref_ids, data["ids"], str(self.reference), str(path))
        try:
            return data[f"{prefix}intersect"][order], data[f"{prefix}union"][order]
        except KeyError:
            raise UserError(f"{path}: no per-image '{prefix}intersect'/'{prefix}union' arrays") from None

    def severities(self, path: Path) -> dict[str, list[str]]:
        """{corruption: [severity, ...]} from the keys ``<corruption>/<severity>/intersect`` of a corrupt npz."""
        cells: dict[str, list[str]] = {}
        for key in self.data(path).files:
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == "intersect" and parts[0] != "clean":
                cells.setdefault(parts[0], []).append(parts[1])
        return {c: sorted(s, key=int) for c, s in cells.items()}


def _runs(group: SeedGroup, slot: str) -> list[Run] | None:
    runs = [getattr(m, slot) for m in group.members]
    if any(r is None or not (r.path / "per_image.npz").is_file() for r in runs):
        return None
    return runs


def _pairable(base: list[Run], other: list[Run], skipped: list[str]) -> bool:
    for run in (*base[1:], *other):
        if not same_images(base[0], run):
            skipped.append(f"{base[0].path} and {run.path} were not paired in the bootstrap: different datasets "
                           "(dataset_fingerprint)")
            return False
    return True


def _interval(seeds_a: list[list[Cell]], seeds_b: list[list[Cell]], **kwargs: Any) -> SeedInterval:
    with warnings.catch_warnings():  # an undefined (all-NaN) mIoU gives a NaN interval, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return two_level_difference(seeds_a, seeds_b, **kwargs)


def clean_difference(base: SeedGroup, other: SeedGroup, skipped: list[str], **kwargs: Any) -> SeedInterval | None:
    """The interval of the clean single-scale mIoU difference (eval, else the sweep's clean cell); None when the
    configurations lack per-image areas or were evaluated on different datasets (then said in ``skipped``)."""
    for slot, prefix in (("eval_ss", ""), ("corrupt", "clean/")):
        runs_a, runs_b = _runs(base, slot), _runs(other, slot)
        if runs_a and runs_b:
            if not _pairable(runs_a, runs_b, skipped):
                return None
            areas = _Areas(runs_a[0].path / "per_image.npz")
            cells = [[[areas.cell(r.path / "per_image.npz", prefix)] for r in runs] for runs in (runs_a, runs_b)]
            return _interval(*cells, **kwargs)
    return None


def _by_group(base: SeedGroup, other: SeedGroup, skipped: list[str], **kwargs: Any) -> dict[str, SeedInterval]:
    runs_a, runs_b = _runs(base, "corrupt"), _runs(other, "corrupt")
    if not runs_a or not runs_b or not _pairable(runs_a, runs_b, skipped):
        return {}
    files = [r.path / "per_image.npz" for r in (*runs_a, *runs_b)]
    areas = _Areas(files[0])
    keys = [areas.severities(f) for f in files]
    common = {c: [s for s in keys[0][c] if all(s in k.get(c, []) for k in keys)] for c in keys[0]}
    by_group: dict[str, list[str]] = {}
    for c in corruption_order({"_": {"per_corruption": {c: s for c, s in common.items() if s}}}):
        by_group.setdefault(group_of(c), []).append(c)
    out = {}
    for group, names in by_group.items():
        prefixes = [f"{c}/{s}/" for c in names for s in common[c]]
        cells = [[[areas.cell(r.path / "per_image.npz", p) for p in prefixes] for r in runs]
                 for runs in (runs_a, runs_b)]
        out[group] = _interval(*cells, **kwargs)
    return out


def bootstrap_comparisons(groups: dict[str, SeedGroup], baseline: str | None, *, resamples: int, seed: int,
                          confidence: float = 0.95, skipped: list[str] | None = None
                          ) -> dict[str, dict[str, SeedInterval]]:
    """{configuration: {setting: interval of mIoU(configuration) - mIoU(baseline)}}, settings ``clean`` and each
    corruption group; pairs of different datasets are skipped and described in ``skipped``."""
    skipped = [] if skipped is None else skipped
    if baseline is None:
        return {}
    base = groups[baseline]
    kwargs = {"resamples": resamples, "seed": seed, "confidence": confidence}
    out: dict[str, dict[str, SeedInterval]] = {}
    for g in progress_bar([g for g in groups.values() if g.name != baseline], desc="bootstrap", unit="model"):
        res: dict[str, SeedInterval] = {}
        clean = clean_difference(base, g, skipped, **kwargs)
        if clean is not None:
            res["clean"] = clean
        res.update(_by_group(base, g, skipped, **kwargs))
        out[g.name] = res
    return out


def _verdict(iv: SeedInterval) -> str | None:
    if not iv.reliable or not np.isfinite([iv.low, iv.high]).all():
        return None
    return "yes" if iv.significant else "no"


def uncertainty_table(intervals: dict[str, dict[str, SeedInterval]], groups: dict[str, SeedGroup], baseline: str,
                      confidence: float) -> Table | None:
    """One row per (configuration, setting): Δ mIoU, its interval, the images and seeds it rests on, whether it
    is significant (the interval excludes 0) and the marks ``†`` (fewer than 20 images), ``‡`` (fewer than 2
    seeds on either side)."""
    rows = []
    for name, per in intervals.items():
        for setting, iv in per.items():
            marks = (FEW_IMAGES if iv.num_images < MIN_IMAGES else "") + (
                FEW_SEEDS if min(iv.seeds_a, iv.seeds_b) < MIN_SEEDS else "")
            rows.append((name, baseline, setting, iv.estimate, iv.low, iv.high, iv.num_images, iv.seeds_b,
                         iv.seeds_a, _verdict(iv), marks or None))
    if not rows:
        return None
    pct = f"{100 * confidence:g}%"
    resamples = next(iter(next(iv for iv in intervals.values() if iv).values())).resamples
    runs = [r for g in groups.values() for m in g.members for r in (m.eval_ss, m.corrupt)]
    note = dataset_note(runs) + (
        f"Two-level bootstrap ({resamples} resamples): the training seeds of each configuration drawn with "
        "replacement, then the images with replacement (the same image draws for both configurations, every seed "
        "and every corruption x severity cell); Δ is the difference of seed-mean mIoUs, each mIoU recomputed from "
        "summed per-image intersections and unions, a group's mIoU the mean over its cells. With one seed per "
        "configuration this is the paired image bootstrap. significant: the interval excludes 0 (– when it rests "
        f"on too few seeds or images). {FEW_IMAGES}: fewer than {MIN_IMAGES} images, the interval understates the "
        f"uncertainty; {FEW_SEEDS}: fewer than {MIN_SEEDS} training seeds on a side, the interval covers image "
        "sampling only, not the variation between training runs.")
    return Table("uncertainty", f"mIoU difference vs {baseline} ({pct} interval over seeds and images)", (
        Column("configuration"), Column("baseline"), Column("setting"), Column("Δ mIoU", "+.2f"),
        Column(f"{pct} low", "+.2f"), Column(f"{pct} high", "+.2f"), Column("images", "d"),
        Column("seeds", "d"), Column("baseline seeds", "d"), Column("significant"), Column("marks")),
        tuple(rows), note=note)
