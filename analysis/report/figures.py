"""The report's figures: validation curves, mIoU against severity, corruptions vs natural shift, and the copied
``analyze`` figures.

Each function writes into the report's staging folder (an :class:`~repsep.ownership.OwnedFolder`) and records
what it wrote, returning paths relative to the report folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from analysis.report.reader import ModelEntry, Run
from analysis.report.tables_robustness import corruption_order
from analysis.report.tables_shift import shift_summary
from analysis.robustness_plots import plot_severity, plot_shift_bars, save_figure, severity_curve
from analysis.training_curves import curve_figure, val_curve
from corruptions.suite import group_of
from repsep.ownership import OwnedFolder

FIGURE_CAPTIONS = {"val_miou": "val mIoU vs training iteration", "robustness_severity": "mIoU vs severity",
                   "shift_vs_corruption": "synthetic corruptions vs natural shift"}


def training_curves(models: dict[str, ModelEntry]) -> tuple[dict[str, list[tuple[int, float]]], dict[str, int]]:
    """Validation curve and iteration count of every model given with its train folder."""
    curves, iters = {}, {}
    for m in models.values():
        if m.train is not None and (m.train.path / "metrics.jsonl").is_file():
            curves[m.name] = val_curve(m.train.path / "metrics.jsonl")
            iters[m.name] = m.iterations()
    return curves, iters


def _recorded(folder: OwnedFolder, paths: list[Path]) -> list[Path]:
    rels = [p.relative_to(folder.path) for p in paths]
    for rel in rels:
        folder.record(rel)
    return rels


def curves_figure(curves: dict[str, list[tuple[int, float]]], folder: OwnedFolder) -> list[Path]:
    """``figures/val_miou.{png,pdf}`` (nothing when no run validated twice)."""
    return _recorded(folder, curve_figure(curves, folder.path / "figures"))


def severity_figure(models: dict[str, ModelEntry], folder: OwnedFolder) -> list[Path]:
    """``figures/robustness_severity.{png,pdf}``: mIoU against severity per group, one line per model."""
    results = {m.name: m.corrupt.result for m in models.values() if m.corrupt}
    if not results:
        return []
    corruptions = corruption_order(results)
    severities = sorted({int(s) for r in results.values() for cells in r.get("cells", {}).values() for s in cells})
    curves = {}
    for name, r in results.items():
        cells = {c: {int(s): v for s, v in per.items()} for c, per in r.get("cells", {}).items()}
        clean = r.get("clean")
        curves[name] = {g: severity_curve(cells, float("nan") if clean is None else float(clean),
                                          [c for c in corruptions if group_of(c) == g], severities)
                        for g in dict.fromkeys(group_of(c) for c in corruptions)}
    fig = plot_severity(curves, severities, "mIoU vs corruption severity (mean over each group's corruptions)")
    return _recorded(folder, save_figure(fig, folder.path / "figures" / "robustness_severity"))


def shift_figure(models: dict[str, ModelEntry], folder: OwnedFolder) -> list[Path]:
    """``figures/shift_vs_corruption.{png,pdf}``: per model, mIoU clean / mPC / natural-shift mean and both
    relative to clean (nothing when no model was given with a shift folder)."""
    if not any(m.shift is not None for m in models.values()):
        return []
    values = {m.name: shift_summary(m) for m in models.values() if m.shift is not None or m.corrupt is not None}
    fig = plot_shift_bars(values, "Synthetic corruptions vs natural shift")
    return _recorded(folder, save_figure(fig, folder.path / "figures" / "shift_vs_corruption"))


def copy_analysis_figures(runs: Sequence[Run], folder: OwnedFolder) -> list[tuple[str, Path, str]]:
    """Copy every analyze figure (PNG/PDF) and caption into ``figures/analyze`` (one analyze folder) or
    ``figures/analyze_<k>`` (several); returns (models, png path relative to the report, caption)."""
    shown = []
    for k, run in enumerate(runs, 1):
        fig_dir = run.path / "figures"
        if not fig_dir.is_dir():
            continue
        dest = Path("figures") / ("analyze" if len(runs) == 1 else f"analyze_{k}")
        for src in sorted(fig_dir.iterdir()):
            if src.suffix in (".png", ".pdf", ".txt") and src.is_file():
                folder.write_bytes(dest / src.name, src.read_bytes())
                if src.suffix == ".png":
                    cap = src.with_suffix(".txt")
                    caption = cap.read_text(encoding="utf-8").strip() if cap.is_file() else src.stem
                    shown.append((run.model, dest / src.name, caption))
    return shown
