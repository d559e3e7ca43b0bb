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

from analysis.report import figures as report_figures
from analysis.report.costs import fill_model
from analysis.report.reader import ModelEntry, check_comparable, gather_models, read_run
from analysis.report.tables_analysis import analysis_tables
from analysis.report.tables_main import ablation_table, main_table
from analysis.report.tables_robustness import robustness_tables
from analysis.report.tables_shift import shift_tables
from analysis.report.uncertainty import bootstrap_comparisons, uncertainty_table
from analysis.report.uncertainty_shift import shift_comparisons, shift_uncertainty_table
from analysis.report.writers import readme, write_manifest, write_report_json, write_tables
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


def default_baseline(models: dict[str, ModelEntry]) -> str | None:
    """The model with no separation component when there is exactly one, else the first model given."""
    if not models:
        return None
    plain = [m.name for m in models.values() if m.switches == (False, False, False)]
    return plain[0] if len(plain) == 1 else next(iter(models))


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
        if baseline is not None and baseline not in models:
            raise UserError(f"--baseline {baseline}: no such model; the models are: {', '.join(models)}")
        baseline = baseline or default_baseline(models)

        curves, iters = report_figures.training_curves(models)
        intervals = bootstrap_comparisons(models, baseline, resamples=resamples, seed=seed, confidence=confidence,
                                          skipped=warnings)
        shift_intervals = shift_comparisons(models, baseline, resamples=resamples, seed=seed, confidence=confidence,
                                            skipped=warnings)
        tables = [main_table(models), ablation_table(models), convergence_table(curves, iters),
                  *robustness_tables(models), *shift_tables(models),
                  uncertainty_table(intervals, models, baseline, confidence) if baseline else None,
                  shift_uncertainty_table(shift_intervals, models, baseline, confidence) if baseline else None,
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
