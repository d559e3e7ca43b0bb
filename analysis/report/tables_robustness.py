"""Robustness tables: mIoU per corruption (grouped columns, paper style) and per corruption group."""

from __future__ import annotations

from typing import Any

from analysis.report.common import dataset_note, number
from analysis.report.reader import ModelEntry
from analysis.tables import Column, Table
from corruptions.suite import GROUPS, group_of


def corruption_order(results: dict[str, dict[str, Any]]) -> list[str]:
    """Corruptions present in any result, in the suite's group order (unknown ones after, alphabetically)."""
    present = {c for r in results.values() for c in r.get("per_corruption", {})}
    ordered = [c for names in GROUPS.values() for c in names if c in present]
    return ordered + sorted(present - set(ordered), key=lambda c: (list(GROUPS).index(group_of(c)), c))


def _undefined_reasons(results: dict[str, dict[str, Any]]) -> str:
    reasons = [f"{name}: {label} {r[key]}" for name, r in results.items()
               for key, label in (("mCE_undefined", "mCE"), ("rel_mCE_undefined", "relative mCE")) if r.get(key)]
    return (" Undefined — " + "; ".join(reasons) + ".") if reasons else ""


def robustness_tables(models: dict[str, ModelEntry]) -> list[Table]:
    """Per-corruption table and per-group table, one row per model swept by ``corrupt``."""
    results = {m.name: m.corrupt.result for m in models.values() if m.corrupt}
    if not results:
        return []
    corruptions = corruption_order(results)
    groups = list(dict.fromkeys(group_of(c) for c in corruptions))
    has_ref = any(r.get("reference") is not None or r.get("mCE") is not None for r in results.values())
    cols = [Column("model"), Column("clean", ".1f")]
    cols += [Column(c, ".1f", group_of(c)) for c in corruptions]
    cols += [Column("mPC", ".1f"), Column("rPC (%)", ".1f")]
    cols += [Column("mCE (%)", ".1f"), Column("rel. mCE (%)", ".1f")] if has_ref else []
    rows, group_rows = [], []
    for name, r in results.items():
        per_c, per_g = r.get("per_corruption", {}), r.get("per_group", {})
        with_ref = r.get("reference") is not None or r.get("mCE") is not None
        tail = [number(r.get("mPC")), number(r.get("rPC"))]
        tail += [number(r.get("mCE"), with_ref), number(r.get("rel_mCE"), with_ref)] if has_ref else []
        rows.append((name, number(r.get("clean")), *(number(per_c.get(c), c in per_c) for c in corruptions), *tail))
        group_rows.append((name, number(r.get("clean")), *(number(per_g.get(g), g in per_g) for g in groups),
                           number(r.get("mPC"))))
    note = dataset_note(m.corrupt for m in models.values()) + (
        "mPC: mean over all corruption x severity cells; rPC = mPC / clean" + (
            "; mCE and relative mCE against the reference given to `corrupt --reference-results`." if has_ref
            else ".") + _undefined_reasons(results))
    per_corruption = Table("robustness", "Robustness: mIoU per corruption (mean over severities)", tuple(cols),
                           tuple(rows), note=note)
    per_group = Table("robustness_groups", "Robustness by corruption group",
                      (Column("model"), Column("clean", ".1f"), *(Column(g, ".1f") for g in groups),
                       Column("mPC", ".1f")), tuple(group_rows), note=dataset_note(m.corrupt for m in models.values()))
    return [per_corruption, per_group]
