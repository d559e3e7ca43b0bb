"""A whole (tiny) study: every step runs as its own ``repsep-bench`` process, a rerun continues where it stopped
(also in a moved copy holding no resume checkpoints, as git holds the committed study), and the report groups the
seeds of each model into one configuration with seed-aware intervals."""

from __future__ import annotations

import csv
import shutil

import yaml
from conftest import TINY_TRAIN_OVERRIDES

from analysis.study.runner import run_study
from analysis.study.spec import load_study


def _csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _done(lines: list[str]) -> list[str]:
    """The labels of the steps that ran (``[3/14] corrupt rsseg seed 1: done in 12 s`` -> ``corrupt rsseg seed 1``)."""
    return [line.split("]")[1].split(":")[0].strip() for line in lines if ": done in " in line]


def test_a_study_runs_resumes_and_reports_over_seeds(synthcity_small, tmp_path):
    spec = {"data": f"synthcity:{synthcity_small}", "iterations": 2, "seeds": [0, 1], "baseline": "baseline",
            "train_set": [*(s for s in TINY_TRAIN_OVERRIDES if not s.startswith("schedule.iters")),
                          "schedule.val_interval=1"],
            "models": {"baseline": {"recipe": "synthcity_tiny_baseline"}, "rsseg": {"recipe": "synthcity_tiny_rsseg"}},
            "corrupt": {"models": ["baseline", "rsseg"], "num_images": 4, "corruptions": "gaussian_noise,brightness",
                        "severities": "1"},
            "analyze": {"num_images": 4}, "report": {"resamples": 20}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec))
    study, out = load_study(tmp_path / "study.yaml"), tmp_path / "study"
    lines: list[str] = []
    steps = run_study(study, out, jobs=2, echo=lines.append)  # steps side by side, each after its needs
    assert len(steps) == 4 + 4 + 4 + 1 + 1 and all(": done in " in line for line in lines)

    seeds = {r["configuration"]: r for r in _csv(out / "report" / "tables" / "seeds.csv")}
    assert list(seeds) == ["baseline", "rsseg"]
    assert [(r["runs"], r["seeds"], r["iterations"]) for r in seeds.values()] == [("2", "0, 1", "2")] * 2
    unc = {(r["configuration"], r["setting"]): r for r in _csv(out / "report" / "tables" / "uncertainty.csv")}
    assert set(unc) == {("rsseg", "clean"), ("rsseg", "noise"), ("rsseg", "digital")}
    assert all((r["seeds"], r["baseline seeds"], r["images"]) == ("2", "2", "8") for r in unc.values()
               if r["setting"] == "clean")
    before = (out / "report" / "tables" / "uncertainty.csv").read_bytes()

    shutil.rmtree(out / "runs" / "rsseg-seed1" / "corrupt")  # as if killed during that sweep
    lines.clear()
    run_study(study, out, jobs=2, echo=lines.append)
    assert _done(lines) == ["corrupt rsseg seed 1", "report"]
    assert (out / "report" / "tables" / "uncertainty.csv").read_bytes() == before  # the same numbers again

    moved = tmp_path / "clone" / "study"  # as git holds a committed study: finished runs without checkpoint_last.pt
    shutil.copytree(out, moved)
    for resume_state in moved.rglob("checkpoint_last.pt"):
        resume_state.unlink()
    lines.clear()
    run_study(study, moved, jobs=2, echo=lines.append)
    assert _done(lines) == ["report"]
    assert (moved / "report" / "tables" / "uncertainty.csv").read_bytes() == before
