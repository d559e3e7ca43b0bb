"""Robustness metrics from per-(corruption, severity) mIoUs.

All inputs and outputs are in percent (mIoU 0-100). Definitions:

- per corruption: mean mIoU over the evaluated severities (Kamann & Rother, SegFormer's Cityscapes-C table);
  per group: mean of its evaluated corruptions; mPC: mean over every (corruption, severity) cell (Michaelis et
  al.); rPC = 100 * mPC / clean mIoU (the "retention rate").
- against a reference model (Hendrycks & Dietterich with error E = 1 - mIoU; Kamann & Rother's CD):
  CE_c = 100 * sum_s E_{c,s} / sum_s E^ref_{c,s}, mCE = mean_c CE_c;
  relative CE_c = 100 * sum_s (E_{c,s} - E_clean) / sum_s (E^ref_{c,s} - E^ref_clean), rel_mCE = its mean.
  A ratio whose reference denominator is zero (a perfect reference: CE) or whose reference error does not rise
  by at least ``MIN_REFERENCE_RISE`` mIoU points per severity (relative CE: a reference that barely degrades
  makes the ratio explode, e.g. 10630 %) is *undefined*: None, with the reason in ``CE_undefined`` /
  ``rel_CE_undefined``; a mean over a corruption with an undefined value is undefined too.

A cell that was asked for but has no result is an error naming the cell, never averaged in as zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corruptions.suite import group_of
from repsep.comparability import CORRUPT_FIELDS, NO_SETTINGS, differences, has_settings
from repsep.errors import UserError
from repsep.io import read_json

Cells = Mapping[str, Mapping[int, float]]
MIN_REFERENCE_RISE = 1.0
"""mIoU points: the least mean rise of the reference's error over the severities for a defined relative CE."""


@dataclass(frozen=True)
class ReferenceResults:
    """A reference model's clean mIoU and per-cell mIoUs (percent), e.g. read from its ``robustness.json``."""

    source: str
    clean: float
    cells: dict[str, dict[int, float]]
    settings: dict[str, Any] | None = None


def load_reference(path: str | Path) -> ReferenceResults:
    """Read a reference model's results: a ``corrupt`` output folder or its ``robustness.json``."""
    path = Path(path)
    file = path / "robustness.json" if path.is_dir() else path
    data = read_json(file)
    try:
        clean = float(data["clean"])
        cells = {c: {int(s): float(v) for s, v in per_sev.items() if v is not None}
                 for c, per_sev in data["cells"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UserError(f"{file}: not a robustness.json (needs 'clean' and 'cells' {{corruption: {{severity: mIoU}}}})"
                        ) from None
    settings = data.get("settings")
    return ReferenceResults(source=str(file), clean=clean, cells=cells,
                            settings=settings if isinstance(settings, dict) else None)


def check_reference(reference: ReferenceResults, settings: Mapping[str, Any], where: str, *,
                    allow_mismatch: bool = False) -> list[str]:
    """Refuse a reference swept differently from this run (``settings``, recorded in ``where``): UserError naming
    the first differing field of :data:`repsep.comparability.CORRUPT_FIELDS`, or that the reference records no
    settings. With ``allow_mismatch`` returns every difference instead (for a warning)."""
    if not has_settings(reference.settings):
        found = [f"{reference.source}: {NO_SETTINGS}"]
    else:
        found = differences(reference.settings, settings, CORRUPT_FIELDS)  # type: ignore[arg-type]
    if found and not allow_mismatch:
        lead = found[0] if not has_settings(reference.settings) else (
            f"{reference.source} and {where} differ in {found[0]}")
        raise UserError(f"--reference-results: {lead}; pass --allow-mismatch to use it anyway")
    return found


def _cell(cells: Cells, corruption: str, severity: int, where: str) -> float:
    try:
        value = cells[corruption][severity]
    except KeyError:
        raise UserError(f"{where}: no result for {corruption} severity {severity}") from None
    if value is None or not math.isfinite(value):
        raise UserError(f"{where}: the result for {corruption} severity {severity} is not a number")
    return float(value)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _ratio(num: float, den: float, reason: str | None) -> tuple[float | None, str | None]:
    return (None, reason) if reason is not None else (100 * num / den, None)


def corruption_errors(cells: Cells, clean: float, reference: ReferenceResults, corruptions: Sequence[str],
                      severities: Sequence[int]) -> tuple[dict[str, float | None], dict[str, float | None],
                                                          dict[str, str], dict[str, str]]:
    """(CE_c, relative CE_c, reasons CE is undefined, reasons relative CE is undefined) per corruption, in
    percent, against ``reference``; an undefined value is None and its reason names the reference's numbers."""
    ce: dict[str, float | None] = {}
    rel: dict[str, float | None] = {}
    ce_why: dict[str, str] = {}
    rel_why: dict[str, str] = {}
    ref_clean_err = 1 - reference.clean / 100
    for c in corruptions:
        err = [1 - _cell(cells, c, s, "results") / 100 for s in severities]
        ref = [1 - _cell(reference.cells, c, s, reference.source) / 100 for s in severities]
        den = sum(ref)
        ce[c], why = _ratio(sum(err), den, None if den > 0 else "the reference is perfect (error 0) on it")
        if why:
            ce_why[c] = why
        rel_den = sum(r - ref_clean_err for r in ref)
        rise = 100 * rel_den / len(severities)  # mean rise of the reference's error, mIoU points
        reason = None
        if rel_den <= 0:
            reason = f"the reference's error does not rise (mean change {rise:+.2f} mIoU points)"
        elif rise < MIN_REFERENCE_RISE:
            reason = (f"the reference's error rises only {rise:.2f} mIoU points (< {MIN_REFERENCE_RISE:g}); the "
                      "ratio would be unstable")
        rel[c], why = _ratio(sum(e - (1 - clean / 100) for e in err), rel_den, reason)
        if why:
            rel_why[c] = why
    return ce, rel, ce_why, rel_why


def _mean_defined(values: Mapping[str, float | None], why: Mapping[str, str]) -> tuple[float | None, str | None]:
    if why:
        c = next(iter(why))
        return None, f"undefined for {len(why)} corruption(s), e.g. {c}: {why[c]}"
    return _mean([v for v in values.values() if v is not None]), None


def robustness_summary(clean: float, cells: Cells, corruptions: Sequence[str], severities: Sequence[int],
                       reference: ReferenceResults | None = None) -> dict[str, Any]:
    """Every robustness number for the evaluated ``corruptions`` x ``severities`` (mIoUs in percent).

    Returns a dict with ``clean``, ``cells`` {corruption: {severity: mIoU}}, ``per_corruption``, ``per_group``,
    ``mPC``, ``rPC`` and, with a reference, ``CE``/``rel_CE`` {corruption: % or None}, ``mCE``, ``rel_mCE``
    (else None), and the reasons of undefined values: ``CE_undefined``/``rel_CE_undefined`` {corruption: reason},
    ``mCE_undefined``/``rel_mCE_undefined`` (reason or None).
    """
    if not corruptions or not severities:
        raise UserError("nothing to summarise: no corruptions or no severities were evaluated")
    grid = {c: {s: _cell(cells, c, s, "results") for s in severities} for c in corruptions}
    per_corruption = {c: _mean(list(grid[c].values())) for c in corruptions}
    groups: dict[str, list[float]] = {}
    for c in corruptions:
        groups.setdefault(group_of(c), []).append(per_corruption[c])
    mpc = _mean([v for per_sev in grid.values() for v in per_sev.values()])
    out: dict[str, Any] = {
        "clean": clean,
        "cells": grid,
        "per_corruption": per_corruption,
        "per_group": {g: _mean(v) for g, v in groups.items()},
        "mPC": mpc,
        "rPC": 100 * mpc / clean if clean else math.nan,
        "CE": None, "mCE": None, "rel_CE": None, "rel_mCE": None,
    }
    if reference is not None:
        ce, rel, ce_why, rel_why = corruption_errors(grid, clean, reference, corruptions, severities)
        mce, mce_why = _mean_defined(ce, ce_why)
        rel_mce, rel_mce_why = _mean_defined(rel, rel_why)
        out.update(CE=ce, mCE=mce, rel_CE=rel, rel_mCE=rel_mce, CE_undefined=ce_why, rel_CE_undefined=rel_why,
                   mCE_undefined=mce_why, rel_mCE_undefined=rel_mce_why, reference=reference.source)
    return out
