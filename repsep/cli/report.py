"""`repsep-bench report`: combine output folders into tables, figures and a manifest."""

from __future__ import annotations

from pathlib import Path

import typer


def report_cmd(
    run_dirs: list[Path] = typer.Argument(..., help="train / eval / corrupt / shift / analyze output folders (any "
                                          "order; the kind is read from each folder's manifest.json)."),
    out: Path = typer.Option(..., "--out", help="Report folder to create, e.g. reports/synthcity."),
    baseline: str | None = typer.Option(None, "--baseline", help="Model (training-run folder name) the others are "
                                        "compared with; default: the model without pathway/SASM/DCA, else the "
                                        "first one given."),
    seed: int = typer.Option(0, "--seed", help="Seed of the paired bootstrap over images."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples (95% percentile intervals)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier report in --out (only the files "
                                   "that report wrote; any other file there is an error)."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Combine results whose settings differ "
                                        "(dataset, images, inference, corruption seed, severities, backends) or "
                                        "that record none; every difference is shown in a warning above the "
                                        "tables."),
) -> None:
    """Combine output folders into README.md tables (+ CSV, LaTeX booktabs), figures and a manifest.

    Results that cannot be compared (another dataset fingerprint, split, images, inference options, precision;
    for corrupt also base seed, severities or backend per cell) are refused naming the first difference.
    Tables: main (deployed params, GMACs, clean mIoU single- and multi-scale), ablation ladder (the single-factor rungs
    baseline -> +aux -> +stem -> +skip -> +discrepancy -> +SASM -> +DCA that are present), robustness per
    corruption and group (mPC, rPC, mCE), natural shift from `shift` folders (mIoU
    per dataset, mean, % of clean, beside mPC / rPC, with a figure of both), paired-bootstrap intervals of each
    model's mIoU difference vs the baseline (clean, per corruption group, per natural-shift dataset and their
    mean), over-smoothness from analyze. Shift folders of different models must hold the same datasets, images
    and inference settings.
    The folder is built aside and renamed into place; regenerating it gives byte-identical tables.
    """
    from analysis.report import build_report
    from analysis.tables import to_markdown

    result = build_report(run_dirs, out, baseline=baseline, seed=seed, resamples=resamples, overwrite=overwrite,
                          allow_mismatch=allow_mismatch)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for table in result.tables:
        if table.stem in ("main", "ablation", "robustness_groups", "shift", "uncertainty", "shift_uncertainty"):
            typer.echo(to_markdown(table))
    typer.echo(f"report written to {result.out} (README.md, tables/*.csv|tex, report.json, manifest.json)")
