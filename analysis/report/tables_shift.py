"""Natural-shift tables: mIoU per shifted dataset / condition with each ratio to clean, and the side-by-side summary
of synthetic corruptions (mPC, rPC of ``corrupt``) and natural shift (mean, % of clean of ``shift``) per model."""

from __future__ import annotations

from typing import Any

from analysis.report.common import dataset_note, number
from analysis.report.reader import ModelEntry, finite, shift_entries
from analysis.tables import Column, Table


def shift_names(models: dict[str, ModelEntry]) -> list[str]:
    """The shifted datasets' entry names (clean excluded), in the order of the first model that has them."""
    names: list[str] = []
    for m in models.values():
        if m.shift is not None:
            names += [e["name"] for e in shift_entries(m.shift)[1:] if e["name"] not in names]
    return names


def _specs(models: dict[str, ModelEntry]) -> str:
    """``acdc-fog = acdc:/data/acdc:fog (val)`` for every entry, as recorded by the first model that has it."""
    seen: dict[str, str] = {}
    for m in models.values():
        if m.shift is not None:
            for e in shift_entries(m.shift)[1:]:
                seen.setdefault(e["name"], f"{e['name']} = {e.get('dataset')} ({e.get('split')})")
    return "; ".join(seen.values())


def shift_summary(m: ModelEntry) -> dict[str, float | None]:
    """The numbers the summary table and the figure show for one model (None where not computed)."""
    out: dict[str, float | None] = dict.fromkeys(("corrupt_clean", "mPC", "rPC", "shift_clean", "shift_mean",
                                                  "shift_ratio"))
    if m.corrupt is not None:
        r = m.corrupt.result
        out.update(corrupt_clean=finite(r.get("clean")), mPC=finite(r.get("mPC")), rPC=finite(r.get("rPC")))
    if m.shift is not None:
        r = m.shift.result
        out.update(shift_clean=finite((r.get("clean") or {}).get("mIoU")), shift_mean=finite(r.get("mean")),
                   shift_ratio=finite(r.get("mean_ratio")))
    return out


def shift_tables(models: dict[str, ModelEntry]) -> list[Table]:
    """The natural-shift table (one row per model given with a shift folder) and the corruption-vs-shift summary."""
    runs = {m.name: m.shift for m in models.values() if m.shift is not None}
    if not runs:
        return []
    names = shift_names(models)
    cols = [Column("model"), Column("clean", ".1f"), *(Column(n, ".1f", "mIoU") for n in names),
            Column("mean", ".1f", "mIoU"), *(Column(n, ".1f", "% of clean") for n in names),
            Column("mean", ".1f", "% of clean")]
    rows = []
    for name, run in runs.items():
        r: dict[str, Any] = run.result
        by_name = {e["name"]: e for e in shift_entries(run)[1:]}
        values = [number(by_name[n].get("mIoU")) if n in by_name else None for n in names]
        ratios = [number(by_name[n].get("ratio")) if n in by_name else None for n in names]
        rows.append((name, number((r.get("clean") or {}).get("mIoU")), *values, number(r.get("mean")), *ratios,
                     number(r.get("mean_ratio"))))
    note = (f"Clean: {dataset_note(runs.values()).removeprefix('Dataset: ').removeprefix('Datasets: ')}"
            f"Shifted datasets (`shift --data`): {_specs(models)}. Each evaluated as `eval --data` with the clean "
            "evaluation's inference settings, the model as is; mean: plain mean over the shifted datasets; % of "
            "clean = 100 x mIoU / clean mIoU.")
    table = Table("shift", "Natural shift: mIoU per dataset / condition and relative to clean", tuple(cols),
                  tuple(rows), note=note)
    summary_rows = []
    for m in models.values():
        if m.shift is None and m.corrupt is None:
            continue
        s = shift_summary(m)
        summary_rows.append((m.name, s["corrupt_clean"], s["mPC"], s["rPC"], s["shift_clean"], s["shift_mean"],
                             s["shift_ratio"]))
    summary = Table("shift_vs_corruption", "Synthetic corruptions (Cityscapes-C style) vs natural shift", (
        Column("model"), Column("clean", ".1f", "synthetic corruptions"), Column("mPC", ".1f", "synthetic corruptions"),
        Column("rPC (%)", ".1f", "synthetic corruptions"), Column("clean", ".1f", "natural shift"),
        Column("mean", ".1f", "natural shift"), Column("% of clean", ".1f", "natural shift")), tuple(summary_rows),
        note="mPC: mean mIoU over every corruption x severity cell of `corrupt`; rPC = 100 mPC / clean; natural "
        "shift: mean mIoU over the `shift` datasets and its percentage of that run's clean mIoU. The two cleans "
        "may be computed on different image subsets.")
    return [table, summary]
