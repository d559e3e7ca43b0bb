"""Paired bootstrap on the natural-shift datasets: each model's mIoU difference vs the baseline, per dataset entry
of ``shift`` (clean included) and for the mean over the shifted datasets.

Within a dataset both models' images are resampled together (paired, ids matched by name); datasets are resampled
independently of each other (each with its own seed derived from ``--seed``, the same draws in the per-dataset and
the mean intervals). Pairs whose datasets differ are skipped and said so (with ``--allow-mismatch``; otherwise the
comparability check refused them already).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from analysis.bootstrap import Interval, match_ids, paired_difference, strata_seeds, stratified_mean_difference
from analysis.report.common import dataset_note
from analysis.report.reader import ModelEntry, Run, shift_entries
from analysis.report.uncertainty import FEW_IMAGES, FEW_SEEDS, MIN_IMAGES, MIN_SEEDS
from analysis.tables import Column, Table
from repsep.errors import UserError
from repsep.progress import progress_bar

MEAN = "mean (shifted)"


def _cells(run: Run, names: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(ids, intersect, union) per entry name from the shift folder's ``per_image.npz``."""
    path = run.path / "per_image.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return [(data[f"{n}/ids"], data[f"{n}/intersect"], data[f"{n}/union"]) for n in names]
    except KeyError as e:
        raise UserError(f"{path}: no per-image arrays {e} of a shift entry") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read per-image areas ({e})") from None


def _same_datasets(a: Run, b: Run) -> bool:
    """Whether two shift results hold the same datasets in the same order (equal dataset fingerprints)."""
    ea, eb = shift_entries(a), shift_entries(b)
    if len(ea) != len(eb):
        return False
    return all((x.get("settings") or {}).get("dataset_fingerprint") == (y.get("settings") or {}).get(
        "dataset_fingerprint") for x, y in zip(ea, eb, strict=True))


def shift_comparisons(models: dict[str, ModelEntry], baseline: str | None, *, resamples: int, seed: int,
                      confidence: float = 0.95, skipped: list[str] | None = None) -> dict[str, dict[str, Interval]]:
    """{model: {entry name or :data:`MEAN`: interval of mIoU(model) - mIoU(baseline)}} for every model with a
    shift result comparable with the baseline's."""
    skipped = [] if skipped is None else skipped
    base = models[baseline].shift if baseline is not None else None
    if base is None:
        return {}
    out: dict[str, dict[str, Interval]] = {}
    others = [m for m in models.values() if m.name != baseline and m.shift is not None]
    for m in progress_bar(others, desc="bootstrap (shift)", unit="model"):
        run: Run = m.shift  # type: ignore[assignment]
        if not _same_datasets(base, run):
            skipped.append(f"{base.path} and {run.path} were not paired in the bootstrap: different datasets "
                           "(dataset_fingerprint)")
            continue
        names = [e["name"] for e in shift_entries(base)]
        cells_a, cells_b = _cells(base, names), _cells(run, [e["name"] for e in shift_entries(run)])
        pairs = []
        for (ida, ia, ua), (idb, ib, ub) in zip(cells_a, cells_b, strict=True):
            oa, ob = match_ids(ida, idb, str(base.path / "per_image.npz"), str(run.path / "per_image.npz"))
            pairs.append(((ia[oa], ua[oa]), (ib[ob], ub[ob])))
        seeds = strata_seeds(seed, len(pairs) - 1)  # the shifted datasets (clean is not in the mean)
        kwargs: dict[str, Any] = {"resamples": resamples, "confidence": confidence}
        with warnings.catch_warnings():  # an undefined (all-NaN) mIoU gives a NaN interval, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            res = {names[0]: paired_difference([pairs[0][0]], [pairs[0][1]], seed=seed, **kwargs)}
            for name, (a, b), s in zip(names[1:], pairs[1:], seeds, strict=True):
                res[name] = paired_difference([a], [b], seed=s, **kwargs)
            res[MEAN] = stratified_mean_difference([a for a, _ in pairs[1:]], [b for _, b in pairs[1:]], seed=seed,
                                                   **kwargs)
        out[m.name] = res
    return out


def _images(run: Run, setting: str) -> int:
    entries = shift_entries(run)
    if setting == MEAN:
        return sum(int(e.get("num_images") or 0) for e in entries[1:])
    return next(int(e.get("num_images") or 0) for e in entries if e["name"] == setting)


def shift_uncertainty_table(intervals: dict[str, dict[str, Interval]], models: dict[str, ModelEntry],
                            baseline: str, confidence: float, seeds: int = 1) -> Table | None:
    """One row per (model, dataset entry): Δ mIoU vs the baseline and its interval, the images, the marks."""
    rows = []
    for name, per in intervals.items():
        for setting, iv in per.items():
            run: Run = models[name].shift  # type: ignore[assignment]
            n = _images(run, setting)
            few = n < MIN_IMAGES if setting != MEAN else any(
                int(e.get("num_images") or 0) < MIN_IMAGES for e in shift_entries(run)[1:])
            marks = (FEW_IMAGES if few else "") + (FEW_SEEDS if seeds < MIN_SEEDS else "")
            rows.append((name, baseline, setting, iv.estimate, iv.low, iv.high, n, seeds, marks or None))
    if not rows:
        return None
    pct = f"{100 * confidence:g}%"
    resamples = next(iv for per in intervals.values() for iv in per.values()).resamples
    note = dataset_note(m.shift for m in models.values()) + (
        f"Images resampled with replacement ({resamples} resamples), the same draws for both models; each dataset "
        f"resampled on its own; '{MEAN}': the mean over the shifted datasets (clean not included). "
        f"{FEW_IMAGES}: fewer than {MIN_IMAGES} images (in a dataset), the interval understates the uncertainty; "
        f"{FEW_SEEDS}: fewer than {MIN_SEEDS} training seeds per model, the interval covers image sampling only.")
    return Table("shift_uncertainty", f"Paired bootstrap on the natural-shift datasets: mIoU difference vs "
                 f"{baseline} ({pct} interval)", (
                     Column("model"), Column("baseline"), Column("dataset"), Column("Δ mIoU", "+.2f"),
                     Column(f"{pct} low", "+.2f"), Column(f"{pct} high", "+.2f"), Column("images", "d"),
                     Column("seeds", "d"), Column("marks")), tuple(rows), note=note)
