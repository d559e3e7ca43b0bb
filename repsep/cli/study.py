"""`repsep-bench study`: a grid of models x training seeds at one budget, from training to the report."""

from __future__ import annotations

from pathlib import Path

import typer


def study_cmd(
    study_file: Path = typer.Argument(..., help="The study YAML: dataset, iterations (one budget for every run), "
                                      "seeds, models (recipe + --set overrides), and the corrupt / analyze / "
                                      "report options (analysis/study/spec.py documents the format)."),
    out: Path = typer.Option(..., "--out", help="Study folder, e.g. runs/synthcity_study: study.json (the resolved "
                             "grid), runs/<model>-seed<S>/ (train, eval/, corrupt/), analyze/seed<S>/, report/."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes per step (torchrun; 1 = plain process)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every step's command and stop."),
) -> None:
    """Run a study: train every (model, seed) at equal iterations and data, then eval, sweep, analyze, report.

    Resumable: run the same command again after an interruption; finished steps are skipped and training resumes
    from its last checkpoint. One line per step.
    """
    from analysis.study.runner import run_study
    from analysis.study.spec import load_study

    study = load_study(study_file)
    steps = run_study(study, out, nproc=nproc, dry_run=dry_run, echo=typer.echo)
    if not dry_run:
        typer.echo(f"study {study.name}: {len(steps)} steps done; report in {out / 'report'}")
