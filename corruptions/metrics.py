"""Robustness metrics from per-(corruption, severity) mIoUs.

All inputs and outputs are in percent (mIoU 0-100). Definitions:

- per corruption: mean mIoU over the evaluated severities (Kamann & Rother, SegFormer's Cityscapes-C table);
  per group: mean of its evaluated corruptions; mPC: mean over every (corruption, severity) cell (Michaelis et
  al.); rPC = 100 * mPC / clean mIoU (the "retention rate").
- against a reference model (Hendrycks & Dietterich with error E = 1 - mIoU; Kamann & Rother's CD):
  CE_c = 100 * sum_s E_{c,s} / sum_s E^ref_{c,s}, mCE = mean_c CE_c;
  relative CE_c = 100 * sum_s (E_{c,s} - E_clean) / sum_s (E^ref_{c,s} - E^ref_clean), rel_mCE = its mean
  (NaN for a corruption that leaves the reference's error unchanged).

A cell that was asked for but has no result is an error naming the cell, never averaged in as zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corruptions.suite import group_of
from repsep.errors import UserError
from repsep.io import read_json

Cells = Mapping[str, Mapping[int, float]]


@dataclass(frozen=True)
class ReferenceResults:
    """A reference model's clean mIoU and per-cell mIoUs (percent), e.g. read from its ``robustness.json``."""

    source: str
    clean: float
    cells: dict[str, dict[int, float]]


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
    return ReferenceResults(source=str(file), clean=clean, cells=cells)


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


def corruption_errors(cells: Cells, clean: float, reference: ReferenceResults, corruptions: Sequence[str],
                      severities: Sequence[int]) -> tuple[dict[str, float], dict[str, float]]:
    """(CE_c, relative CE_c) per corruption, in percent, against ``reference``."""
    ce, rel = {}, {}
    for c in corruptions:
        err = [1 - _cell(cells, c, s, "results") / 100 for s in severities]
        ref = [1 - _cell(reference.cells, c, s, reference.source) / 100 for s in severities]
        ce[c] = 100 * sum(err) / sum(ref)
        rel_den = sum(r - (1 - reference.clean / 100) for r in ref)
        rel_num = sum(e - (1 - clean / 100) for e in err)
        rel[c] = 100 * rel_num / rel_den if rel_den != 0 else math.nan
    return ce, rel


def robustness_summary(clean: float, cells: Cells, corruptions: Sequence[str], severities: Sequence[int],
                       reference: ReferenceResults | None = None) -> dict[str, Any]:
    """Every robustness number for the evaluated ``corruptions`` x ``severities`` (mIoUs in percent).

    Returns a dict with ``clean``, ``cells`` {corruption: {severity: mIoU}}, ``per_corruption``, ``per_group``,
    ``mPC``, ``rPC`` and, with a reference, ``CE``/``rel_CE`` {corruption: %}, ``mCE``, ``rel_mCE`` (else None).
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
        ce, rel = corruption_errors(grid, clean, reference, corruptions, severities)
        out.update(CE=ce, mCE=_mean(list(ce.values())), rel_CE=rel, rel_mCE=_mean(list(rel.values())),
                   reference=reference.source)
    return out
