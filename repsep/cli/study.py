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
    jobs: int = typer.Option(1, "--jobs", min=1, help="Steps run side by side (a step still waits for the steps "
                             "it needs: eval and the sweep for their training, a sweep for the baseline's sweep of "
                             "its seed, analyze for every training of its seed, the report for everything). With "
                             "more than 1 each process gets CPUs // (jobs x nproc) threads (OMP_NUM_THREADS, "
                             "REPSEP_CORRUPT_THREADS; set them yourself to choose). Tiny models on a few cores "
                             "train faster as 2 jobs of 1 thread than as 1 job of 2 (a small study on 2 cores: "
                             "1.27x, docs/performance.md, scripts/bench_study_jobs.py); the thread count (like "
                             "the CPU's kernels) changes float rounding only; each run's manifest records both."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every step's command and stop."),
) -> None:
    """Run a study: train every (model, seed) at equal iterations and data, then eval, sweep, analyze, report.

    Resumable: run the same command again after an interruption; finished steps are skipped and training resumes
    from its last checkpoint. One line per step. One runner per study folder at a time. A study folder may be moved
    or kept in git without its resume checkpoints (scripts/commit_study.sh) and continued on another machine.
    """
    from analysis.study.runner import run_study
    from analysis.study.spec import load_study

    study = load_study(study_file)
    steps = run_study(study, out, nproc=nproc, jobs=jobs, dry_run=dry_run, echo=typer.echo)
    if not dry_run:
        typer.echo(f"study {study.name}: {len(steps)} steps done; report in {out / 'report'}")
