"""scripts/commit_study.sh: what a committed study keeps in git (finished results with model_final.pt, never the
resume checkpoint of a finished run; unfinished runs and sweeps only with --partial) and what it refuses."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com"}


def _result(folder: Path, kind: str, finished: bool, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    marker = {"kind": kind, "finished": finished, "files": {name: "0" * 64 for name in files}}
    (folder / ".repsep-bench.json").write_text(json.dumps(marker))


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=ENV, capture_output=True, text=True, check=True).stdout


def _commit(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "commit_study.sh"), *args], cwd=repo, env=ENV,
                          capture_output=True, text=True)


def test_finished_steps_then_the_stopped_runs(tmp_path):
    repo, study = tmp_path / "repo", tmp_path / "repo" / "st"
    _git(tmp_path, "init", "-q", str(repo))
    (study / "runs" / "a-seed0").mkdir(parents=True)
    (study / "runs" / "b-seed0").mkdir()
    (study / "report").mkdir()
    _result(study, "study", False, {"study.json": "{}"})
    _result(study / "runs" / "a-seed0", "train", True,
            {"model_final.pt": "w", "checkpoint_last.pt": "state", "metrics.jsonl": "{}\n"})
    (study / "runs" / "a-seed0" / ".metrics.jsonl.abcdefgh.tmp").write_text("partial")  # not listed: not added
    _result(study / "runs" / "b-seed0", "train", False, {"checkpoint_last.pt": "state", "metrics.jsonl": "{}\n"})
    _result(study / "report", "report", False, {"tables/main.csv": "x"})  # unfinished report: left alone
    _result(study / "runs" / "a-seed0" / "corrupt", "corrupt", False, {"cells/clean.pt": "c"})
    (study / "runs" / "a-seed0" / "corrupt" / "cells" / "fog-1.pt").write_text("not listed")

    proc = _commit(repo, "st")
    assert proc.returncode == 0, proc.stderr
    assert _git(repo, "ls-files").split() == ["st/.repsep-bench.json", "st/runs/a-seed0/.repsep-bench.json",
                                              "st/runs/a-seed0/metrics.jsonl", "st/runs/a-seed0/model_final.pt",
                                              "st/study.json"]
    assert _commit(repo, "st").stdout.strip() == "nothing to commit"

    assert _commit(repo, "st", "--partial").returncode == 0  # the study was stopped: keep b's resume state
    tracked = _git(repo, "ls-files").split()
    assert "st/runs/b-seed0/checkpoint_last.pt" in tracked  # and the cells the stopped sweep finished
    cells = "st/runs/a-seed0/corrupt/cells"
    assert f"{cells}/clean.pt" in tracked and f"{cells}/fog-1.pt" not in tracked  # unlisted: left alone
    _result(study / "runs" / "b-seed0", "train", True,
            {"model_final.pt": "w", "checkpoint_last.pt": "state", "metrics.jsonl": "{}\n{}\n"})
    assert _commit(repo, "st").returncode == 0  # b finished next session: its resume checkpoint leaves git
    tracked = _git(repo, "ls-files").split()
    assert "st/runs/b-seed0/model_final.pt" in tracked and "st/runs/b-seed0/checkpoint_last.pt" not in tracked
    assert (study / "runs" / "b-seed0" / "checkpoint_last.pt").exists()  # on disk it stays


def test_refuses_a_non_study_and_a_busy_index(tmp_path):
    repo = tmp_path / "repo"
    _git(tmp_path, "init", "-q", str(repo))
    proc = _commit(repo, "nothing-here")
    assert proc.returncode == 2 and "usage: bash scripts/commit_study.sh STUDY_DIR" in proc.stderr
    (repo / "st").mkdir()
    _result(repo / "st", "study", False, {"study.json": "{}"})
    (repo / "notes.txt").write_text("mine")
    _git(repo, "add", "notes.txt")
    proc = _commit(repo, "st")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: the index already holds staged changes; commit or unstage them first")
