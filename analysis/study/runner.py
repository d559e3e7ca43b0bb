"""Run a study step by step: train every (model, seed), evaluate, sweep, analyze, report; resumable after a kill.

Each step is one ``repsep-bench`` command in its own process (``python -m repsep.cli``; under ``torchrun`` with
``nproc > 1``), writing into the study folder::

    OUT/study.json                  the resolved grid (a rerun with another grid is refused)
    OUT/runs/<model>-seed<S>/       train (then eval/ and corrupt/ inside it, the commands' default folders)
    OUT/analyze/seed<S>/            analyze of every model of seed S on the same images and tokens
    OUT/report/                     report of everything

A step whose output folder holds a finished result of its kind (its ``.repsep-bench.json`` marker) is skipped, so
running the study again after an interruption continues at the first unfinished step (training resumes from its
last checkpoint). One progress line per step goes to stdout. ``jobs`` > 1 runs independent steps side by side
(analysis/study/execute.py: each step waits for the steps it needs, each process gets its share of the CPUs).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from analysis.study.execute import Step, job_environment, run_steps, study_lock
from analysis.study.spec import Study
from corruptions.threads import available_cores
from repsep.errors import UserError
from repsep.ownership import OwnedFolder


def run_dir(out: Path, model: str, seed: int) -> Path:
    return out / "runs" / f"{model}-seed{seed}"


def plan(study: Study, out: Path) -> list[Step]:
    """Every step of ``study`` in execution order (baselines before the models compared with them)."""
    steps: list[Step] = []
    order = [study.model(study.baseline), *(m for m in study.models if m.name != study.baseline)]
    for model in order:
        for seed in study.seeds:
            folder = run_dir(out, model.name, seed)
            argv = ["train", model.recipe, "--set", f"data.spec={study.data}", "--set",
                    f"schedule.iters={study.iterations}", "--set", f"seed={seed}"]
            for item in (*study.train_set, *model.overrides):
                argv += ["--set", item]
            steps.append(Step(f"train {model.name} seed {seed}", "train", folder,
                              (*argv, "--out", str(folder), "--resume")))
    for model in order:
        for seed in study.seeds:
            folder = run_dir(out, model.name, seed)
            steps.append(Step(f"eval {model.name} seed {seed}", "eval", folder / "eval",
                              ("eval", "--model", str(folder / "model_final.pt"), "--out", str(folder / "eval")),
                              (folder,)))
    corrupt = study.corrupt_options
    for model in (m for m in order if m.name in study.corrupt_models):
        for seed in study.seeds:
            folder = run_dir(out, model.name, seed)
            argv = ["corrupt", "--model", str(folder / "model_final.pt"), "--out", str(folder / "corrupt")]
            for key in ("num_images", "suite", "corruptions", "severities", "backend", "seed", "workers"):
                if key in corrupt:
                    argv += [f"--{key.replace('_', '-')}", str(corrupt[key])]
            needs = [folder]
            if model.name != study.baseline and study.baseline in study.corrupt_models:
                needs.append(run_dir(out, study.baseline, seed) / "corrupt")
                argv += ["--reference-results", str(needs[-1])]
            steps.append(Step(f"corrupt {model.name} seed {seed}", "corrupt", folder / "corrupt", tuple(argv),
                              tuple(needs)))
    for seed in study.analyze_seeds:
        folder = out / "analyze" / f"seed{seed}"
        argv, needs = ["analyze"], tuple(run_dir(out, model.name, seed) for model in order)
        for run in needs:
            argv += ["--model", str(run / "model_final.pt")]
        for key in ("num_images", "tsne_layers", "seed"):
            if key in study.analyze_options:
                argv += [f"--{key.replace('_', '-')}", str(study.analyze_options[key])]
        steps.append(Step(f"analyze seed {seed}", "analyze", folder, (*argv, "--out", str(folder)), needs))
    inputs = [str(s.out) for s in steps]
    argv = ["report", *inputs, "--baseline", f"{study.baseline}-seed{study.seeds[0]}", "--out", str(out / "report"),
            "--overwrite"]
    for key in ("resamples", "seed"):
        if key in study.report_options:
            argv += [f"--{key}", str(study.report_options[key])]
    steps.append(Step("report", "report", out / "report", tuple(argv), tuple(s.out for s in steps)))
    return steps


def _claim(study: Study, out: Path) -> None:
    """The study folder: new, or holding this same grid (anything else is refused)."""
    folder = OwnedFolder.claim(out, "study", resume=True)
    resolved = study.to_dict()
    if folder.has("study.json"):
        saved = folder.read_json("study.json")
        if saved != json.loads(json.dumps(resolved)):
            differing = sorted(k for k in resolved if json.loads(json.dumps(resolved[k])) != saved.get(k))
            raise UserError(f"{out}: holds another study (differs in {', '.join(differing) or 'its fields'}); "
                            "choose another --out")
    else:
        folder.write_json("study.json", resolved)


def run_study(study: Study, out: str | Path, *, nproc: int = 1, jobs: int = 1, dry_run: bool = False,
              echo: Callable[[str], None] = print) -> list[Step]:
    """Run (or with ``dry_run`` only print) the steps of ``study`` into ``out``, ``jobs`` at once; returns the plan.

    A failing step stops the study with a UserError naming it (its own error line is printed above).
    """
    out = Path(out)
    steps = plan(study, out)
    if dry_run:
        for i, step in enumerate(steps, 1):
            echo(f"[{i}/{len(steps)}] {step.label}: repsep-bench {' '.join(step.argv)}")
        return steps
    if not out.is_dir():
        OwnedFolder.claim(out, "study", resume=True)  # a new study folder: checked, then made (with its marker)
    launcher = [sys.executable, "-m", "repsep.cli"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "repsep.cli"]
    env = job_environment(jobs, nproc, cpus=available_cores(), base=dict(os.environ))
    with study_lock(out) as lock_fd:  # before the claim scans the folder, which a running study is writing
        _claim(study, out)
        run_steps(steps, launcher, jobs=jobs, env=env, lock_fd=lock_fd, echo=echo)
    return steps
