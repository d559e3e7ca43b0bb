"""``build_report``: read the runs, check they are comparable, compute the tables, write the report folder.

The folder is built beside ``--out`` and swapped in on success (:func:`repsep.ownership.replace_result`): an
interrupted or failed run leaves ``--out`` as it was, and ``--overwrite`` replaces only files an earlier
``report`` recorded in its marker (any other file there is an error naming it). Tables are a pure function of the
input files, seed and resample count (byte-identical on rerun).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.report import figures as report_figures
from analysis.report.costs import fill_model
from analysis.report.reader import check_comparable, gather_models, read_run
from analysis.report.seeds import SeedGroup, group_models, group_of_model, seeds_table
from analysis.report.tables_analysis import analysis_tables
from analysis.report.tables_main import ablation_table, ladders, main_table, rung_of
from analysis.report.tables_robustness import robustness_tables
from analysis.report.tables_shift import shift_tables
from analysis.report.uncertainty import bootstrap_comparisons, clean_difference, uncertainty_table
from analysis.report.uncertainty_shift import shift_comparisons, shift_uncertainty_table
from analysis.report.writers import readme, write_manifest, write_report_json, write_tables
from analysis.seed_bootstrap import SeedInterval
from analysis.tables import Table
from analysis.training_curves import convergence_table
from repsep.errors import UserError
from repsep.ownership import replace_result


@dataclass
class ReportResult:
    out: Path
    tables: list[Table]
    baseline: str | None
    warnings: list[str]


def default_baseline(groups: dict[str, SeedGroup]) -> str | None:
    """The configuration on the ladder's first rung (the matched control) when there is exactly one, else the
    first configuration given."""
    if not groups:
        return None
    plain = [g.name for g in groups.values() if g.first.model_config and rung_of(g.first.model_config) == "baseline"]
    return plain[0] if len(plain) == 1 else next(iter(groups))


def step_intervals(ladder: dict[str, list[tuple[str, SeedGroup]]], skipped: list[str],
                   **kwargs: Any) -> dict[str, SeedInterval]:
    """{configuration: interval of its clean mIoU minus the rung before's} along each backbone's ladder."""
    out: dict[str, SeedInterval] = {}
    for entries in ladder.values():
        for (_, before), (_, after) in zip(entries, entries[1:], strict=False):
            interval = clean_difference(before, after, skipped, **kwargs)
            if interval is not None:
                out[after.name] = interval
    return out


def build_report(run_dirs: Sequence[str | Path], out: str | Path, *, baseline: str | None = None, seed: int = 0,
                 resamples: int = 1000, confidence: float = 0.95, overwrite: bool = False,
                 allow_mismatch: bool = False) -> ReportResult:
    """Read the runs, refuse incomparable ones (unless ``allow_mismatch``: then every difference is shown in a
    warning block above the tables), compute the tables and bootstrap intervals, write the report folder."""
    out = Path(out)
    if not run_dirs:
        raise UserError("report: give at least one train/eval/corrupt/shift/analyze output folder")
    if resamples < 1:
        raise UserError(f"--resamples {resamples}: must be at least 1")
    with replace_result(out, "report", overwrite=overwrite, inputs=run_dirs) as folder:
        runs = [read_run(p) for p in run_dirs]
        models = gather_models(runs)
        warnings = check_comparable(runs, models, allow_mismatch=allow_mismatch)
        for entry in models.values():
            fill_model(entry)
        analyze_runs = [r for r in runs if r.kind == "analyze"]
        groups = group_models(models)
        if baseline is not None:
            named = group_of_model(groups, baseline)
            if named is None:
                raise UserError(f"--baseline {baseline}: no such model or configuration; the models are: "
                                f"{', '.join(models)}")
            baseline = named
        baseline = baseline or default_baseline(groups)

        curves, iters = report_figures.training_curves(models)
        kwargs = {"resamples": resamples, "seed": seed, "confidence": confidence}
        intervals = bootstrap_comparisons(groups, baseline, skipped=warnings, **kwargs)
        # natural shift: per model (one seed each), against the baseline configuration's first seed
        base_model = None if baseline is None else groups[baseline].first.name
        shift_intervals = shift_comparisons(models, base_model, skipped=warnings, **kwargs)
        ladder = ladders(groups)
        tables = [main_table(models), seeds_table(groups, curves, iters),
                  ablation_table(ladder, step_intervals(ladder, warnings, **kwargs)),
                  convergence_table(curves, iters), *robustness_tables(models), *shift_tables(models),
                  uncertainty_table(intervals, groups, baseline, confidence) if baseline else None,
                  shift_uncertainty_table(shift_intervals, models, base_model, confidence) if base_model else None,
                  *analysis_tables(analyze_runs)]
        tables = [t for t in tables if t is not None]

        write_tables(folder, tables)
        figures = (report_figures.curves_figure(curves, folder) + report_figures.severity_figure(models, folder)
                   + report_figures.shift_figure(models, folder))
        analysis_figs = report_figures.copy_analysis_figures(analyze_runs, folder)
        settings = {"baseline": baseline, "seed": seed, "resamples": resamples, "confidence": confidence,
                    "allow_mismatch": allow_mismatch}
        write_report_json(folder, settings, tables, intervals, warnings, shift_intervals)
        folder.write_text("README.md", readme(tables, runs, models, baseline, seed, resamples, figures,
                                              analysis_figs, warnings))
        write_manifest(folder, runs, settings)
    return ReportResult(out, tables, baseline, warnings)
