"""The main results table (cost, clean mIoU single- and multi-scale) and the ablation ladder."""

from __future__ import annotations

import functools
from typing import Any

from analysis.report.common import dataset_note, number
from analysis.report.reader import ModelEntry
from analysis.report.seeds import SeedGroup
from analysis.seed_bootstrap import SeedInterval, seed_mean_sd
from analysis.tables import Column, Table

SWITCH_FIELDS = ("name", "pathway", "sasm", "dca", "aux_head", "stem", "low_level_skip", "discrepancy")
"""The model-config fields that place a model on the ablation ladder."""


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


@functools.cache
def _ladder_switches() -> tuple[tuple[str, dict[str, Any]], ...]:
    from repsep.models.registry import LADDER, model_config

    return tuple((rung, {f: getattr(model_config(name, **overrides), f) for f in SWITCH_FIELDS})
                 for rung, name, overrides, _ in LADDER)


def rung_of(model_config: dict[str, Any]) -> str | None:
    """The rung of :data:`repsep.models.registry.LADDER` whose switches ``model_config`` has (None: no rung)."""
    return next((rung for rung, switches in _ladder_switches()
                 if all(model_config.get(f) == v for f, v in switches.items())), None)


def ladders(groups: dict[str, SeedGroup]) -> dict[str, list[tuple[str, SeedGroup]]]:
    """{backbone: [(rung, configuration), ...] in ladder order} for backbones with at least two rungs evaluated."""
    order = [rung for rung, _ in _ladder_switches()]
    by_backbone: dict[str, list[tuple[str, SeedGroup]]] = {}
    for g in groups.values():
        rung = rung_of(g.first.model_config) if g.first.model_config else None
        if rung is not None and g.values("clean"):
            by_backbone.setdefault(str(g.first.model_config.get("backbone")), []).append((rung, g))
    return {b: sorted(e, key=lambda e: order.index(e[0])) for b, e in by_backbone.items() if len(e) >= 2}


def ablation_table(ladder: dict[str, list[tuple[str, SeedGroup]]], steps: dict[str, SeedInterval]) -> Table | None:
    """The single-factor ladder per backbone (:func:`ladders`), one row per configuration: clean mIoU mean and sd
    over seeds, the change from the rung before with its interval (``steps``, keyed by configuration) and the
    change from the first rung."""
    rows, shown = [], []
    for backbone, entries in ladder.items():
        first = prev = None
        for rung, g in entries:
            mean, sd = seed_mean_sd(g.values("clean"))
            step = steps.get(g.name)
            rows.append((backbone, rung, g.name, len(g.members), g.first.iterations(), mean, sd,
                         None if prev is None else mean - prev, *((step.low, step.high) if step else (None, None)),
                         None if first is None else mean - first))
            first = mean if first is None else first
            prev = mean
            shown.extend(g.members)
    if not rows:
        return None
    note = dataset_note(m.eval_ss or m.corrupt for m in shown)
    return Table("ablation", "Ablation: the single-factor ladder (each rung adds one thing to the one before)", (
        Column("backbone"), Column("rung"), Column("configuration"), Column("seeds", "d"), Column("iterations"),
        Column("mIoU", ".2f"), Column("sd", ".2f"), Column("Δ prev", "+.2f"), Column("Δ prev low", "+.2f"),
        Column("Δ prev high", "+.2f"), Column("Δ first rung", "+.2f")), tuple(rows),
        note=note + "Single-scale clean mIoU (%), mean and sample sd over training seeds; rungs as "
        "repsep.models.registry.LADDER defines them (found from each model's config switches); Δ prev: change from "
        "the row above, with its two-level (seeds, images) bootstrap interval at the report's confidence; "
        "iterations: training length (rows trained for different lengths are not equal-compute comparisons).")
