"""The main results table (cost, clean mIoU single- and multi-scale) and the ablation ladder."""

from __future__ import annotations

from analysis.report.common import dataset_note, number
from analysis.report.reader import LADDER, ModelEntry
from analysis.tables import Column, Table


def main_table(models: dict[str, ModelEntry]) -> Table | None:
    """One row per model: backbone, deployed params (M), GMACs, mIoU SS, mIoU MS+flip, FPS."""
    if not models:
        return None
    rows = []
    sizes = ", ".join(sorted({"x".join(map(str, m.info["image_size"])) for m in models.values() if m.info})) or "–"
    for m in models.values():
        params = m.info.get("params")
        ms = m.eval_ms.result if m.eval_ms else {}
        ss = m.eval_ss.result if m.eval_ss else {}
        rows.append((m.name, m.model_config.get("backbone"), None if params is None else params / 1e6,
                     number(m.info.get("gmacs"), False), number(m.clean_miou(), m.has_clean()),
                     number(ms.get("mIoU"), m.eval_ms is not None), number(ss.get("fps", ms.get("fps")), False)))
    note = dataset_note(r for m in models.values() for r in (m.eval_ss, m.eval_ms, m.corrupt))
    return Table("main", "Main results (clean validation set)", (
        Column("model"), Column("backbone"), Column("params (M, deployed)", ".2f"), Column("GMACs", ".2f"),
        Column("mIoU SS", ".2f"), Column("mIoU MS+flip", ".2f"), Column("FPS", ".1f")), tuple(rows),
        note=note + "params: deployed model (no training-only heads); GMACs: 10^9 multiply-adds (what mmseg/fvcore "
        f"print as GFLOPs; the numbers of `models info`) at the training crop ({sizes}); SS: single-scale; "
        "MS+flip: multi-scale with horizontal flip (when such an eval was given); undefined: no labelled pixel.")


def ablation_table(models: dict[str, ModelEntry]) -> Table | None:
    """baseline -> +pathway -> +SASM -> +DCA per backbone, with the change vs the previous row and the baseline."""
    order = list(LADDER)
    by_backbone: dict[str, list[ModelEntry]] = {}
    for m in models.values():
        if m.switches is not None and m.clean_miou() is not None:
            by_backbone.setdefault(str(m.model_config.get("backbone")), []).append(m)
    rows, shown = [], []
    for backbone, entries in by_backbone.items():
        if len(entries) < 2:
            continue
        entries.sort(key=lambda m: (order.index(m.switches) if m.switches in order else len(order), sum(m.switches)))
        base = entries[0].clean_miou() if entries[0].switches == order[0] else None
        prev = None
        for m in entries:
            miou = m.clean_miou()
            rows.append((backbone, m.step, m.name, *("✓" if on else None for on in m.switches), m.iterations(),
                         miou, None if prev is None else miou - prev, None if base is None else miou - base))
            prev = miou
            shown.append(m)
    if not rows:
        return None
    note = dataset_note(m.eval_ss or m.corrupt for m in shown)
    return Table("ablation", "Ablation: baseline -> +pathway -> +SASM -> +DCA", (
        Column("backbone"), Column("step"), Column("model"), Column("pathway"), Column("SASM"), Column("DCA"),
        Column("iterations"), Column("mIoU", ".2f"), Column("Δ prev", "+.2f"),
        Column("Δ baseline", "+.2f")), tuple(rows), note=note + "Single-scale clean mIoU (%); rows ordered by the "
        "model config switches pathway/sasm/dca; iterations: training length (when the train folder was given); "
        "rows trained for different lengths are not equal-compute comparisons.")
