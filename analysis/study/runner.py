"""Run a study step by step: train every (model, seed), evaluate, sweep, analyze, report; resumable after a kill.

Each step is one ``repsep-bench`` command in its own process (``python -m repsep.cli``; under ``torchrun`` with
``nproc > 1``), writing into the study folder::

    OUT/study.json                  the resolved grid (a rerun with another grid is refused)
    OUT/runs/<model>-seed<S>/       train (then eval/ and corrupt/ inside it, the commands' default folders)
    OUT/analyze/seed<S>/            analyze of every model of seed S on the same images and tokens
    OUT/report/                     report of everything

A step whose output folder holds a finished result of its kind (its ``.repsep-bench.json`` marker) is skipped, so
running the study again after an interruption continues at the first unfinished step (training resumes from its
last checkpoint). One progress line per step goes to stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analysis.study.spec import Study
from repsep.errors import UserError
from repsep.ownership import MARKER, OwnedFolder


@dataclass(frozen=True)
class Step:
    """One command of the study: ``argv`` for ``repsep-bench``, done when ``out`` holds a finished ``kind``."""

    label: str
    kind: str
    out: Path
    argv: tuple[str, ...]


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
                              ("eval", "--model", str(folder / "model_final.pt"), "--out", str(folder / "eval"))))
    corrupt = study.corrupt_options
    for model in (m for m in order if m.name in study.corrupt_models):
        for seed in study.seeds:
            folder = run_dir(out, model.name, seed)
            argv = ["corrupt", "--model", str(folder / "model_final.pt"), "--out", str(folder / "corrupt")]
            for key in ("num_images", "suite", "corruptions", "severities", "backend", "seed", "workers"):
                if key in corrupt:
                    argv += [f"--{key.replace('_', '-')}", str(corrupt[key])]
            if model.name != study.baseline and study.baseline in study.corrupt_models:
                argv += ["--reference-results", str(run_dir(out, study.baseline, seed) / "corrupt")]
            steps.append(Step(f"corrupt {model.name} seed {seed}", "corrupt", folder / "corrupt", tuple(argv)))
    for seed in study.analyze_seeds:
        folder = out / "analyze" / f"seed{seed}"
        argv = ["analyze"]
        for model in order:
            argv += ["--model", str(run_dir(out, model.name, seed) / "model_final.pt")]
        for key in ("num_images", "tsne_layers", "seed"):
            if key in study.analyze_options:
                argv += [f"--{key.replace('_', '-')}", str(study.analyze_options[key])]
        steps.append(Step(f"analyze seed {seed}", "analyze", folder, (*argv, "--out", str(folder))))
    inputs = [str(s.out) for s in steps]
    argv = ["report", *inputs, "--baseline", f"{study.baseline}-seed{study.seeds[0]}", "--out", str(out / "report"),
            "--overwrite"]
    for key in ("resamples", "seed"):
        if key in study.report_options:
            argv += [f"--{key}", str(study.report_options[key])]
    steps.append(Step("report", "report", out / "report", tuple(argv)))
    return steps


def is_done(step: Step) -> bool:
    """Whether the step's folder holds a finished result of its kind (the report is always rebuilt)."""
    if step.kind == "report":
        return False
    marker = step.out / MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record.get("kind") == step.kind and bool(record.get("finished"))


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


def run_study(study: Study, out: str | Path, *, nproc: int = 1, dry_run: bool = False,
              echo: Callable[[str], None] = print) -> list[Step]:
    """Run (or with ``dry_run`` only print) the steps of ``study`` into ``out``; returns the plan.

    A failing step stops the study with a UserError naming it (its own error line is printed above).
    """
    out = Path(out)
    steps = plan(study, out)
    if dry_run:
        for i, step in enumerate(steps, 1):
            echo(f"[{i}/{len(steps)}] {step.label}: repsep-bench {' '.join(step.argv)}")
        return steps
    _claim(study, out)
    launcher = [sys.executable, "-m", "repsep.cli"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "repsep.cli"]
    for i, step in enumerate(steps, 1):
        if is_done(step):
            echo(f"[{i}/{len(steps)}] {step.label}: finished earlier, skipped")
            continue
        start = time.perf_counter()
        proc = subprocess.run([*launcher, *step.argv], stdout=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise UserError(f"study step {i}/{len(steps)} ({step.label}) failed with exit code {proc.returncode}; "
                            "fix it and run the study again to continue from there")
        echo(f"[{i}/{len(steps)}] {step.label}: done in {time.perf_counter() - start:.0f} s")
    return steps
