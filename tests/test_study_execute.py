"""The study's step executor: steps side by side up to ``jobs``, a step only after its needs, a failure stops new
starts, finished steps skipped, one runner per folder, each job's thread share."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from analysis.study.execute import Step, job_environment, run_steps, study_lock
from repsep.errors import UserError
from repsep.ownership import MARKER

# a stand-in command: ``NAME LOG SECONDS CODE [AFTER]`` logs its start, waits (up to 60 s) until LOG holds the
# line AFTER when given (a barrier: no timing luck needed), sleeps SECONDS, logs its end, exits with CODE
STEP_SCRIPT = """
import sys, time
name, log, seconds, code = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
after = sys.argv[5] if len(sys.argv) > 5 else None
with open(log, "a") as f: f.write(f"start {name} {time.time()}\\n")
deadline = time.time() + 60
while after and time.time() < deadline and not any(line.startswith(after + " ") for line in open(log)):
    time.sleep(0.05)
time.sleep(seconds)
with open(log, "a") as f: f.write(f"end {name} {time.time()}\\n")
sys.exit(code)
"""
LAUNCHER = (sys.executable, "-c", STEP_SCRIPT)


def _step(tmp_path: Path, name: str, *, needs: tuple[str, ...] = (), seconds: float = 0.1, code: int = 0,
          after: str | None = None) -> Step:
    argv = (name, str(tmp_path / "log.txt"), str(seconds), str(code), *([after] if after else []))
    return Step(f"step {name}", "train", tmp_path / name, argv, tuple(tmp_path / n for n in needs))


def _times(tmp_path: Path) -> dict[tuple[str, str], float]:
    lines = (tmp_path / "log.txt").read_text().split()
    return {(lines[i], lines[i + 1]): float(lines[i + 2]) for i in range(0, len(lines), 3)}


def test_two_jobs_overlap_and_a_step_waits_for_its_needs(tmp_path):
    # a ends only after b started and b only after a started: both ran at once; b outlasts a by 1 s
    steps = [_step(tmp_path, "a", after="start b"), _step(tmp_path, "b", seconds=1.0, after="start a"),
             _step(tmp_path, "c", needs=("a", "b"))]
    lines: list[str] = []
    run_steps(steps, LAUNCHER, jobs=2, echo=lines.append)
    t = _times(tmp_path)
    assert t["start", "b"] < t["end", "a"] and t["start", "a"] < t["end", "b"]  # side by side
    assert t["start", "c"] >= max(t["end", "a"], t["end", "b"])  # after both of its needs, not when a slot freed
    assert sorted(line.split(":")[0] for line in lines) == ["[1/3] step a", "[2/3] step b", "[3/3] step c"]


def test_one_job_runs_the_steps_one_after_another(tmp_path):
    run_steps([_step(tmp_path, "a", seconds=0.2), _step(tmp_path, "b")], LAUNCHER, jobs=1, echo=lambda _: None)
    t = _times(tmp_path)
    assert t["start", "b"] >= t["end", "a"]


def test_a_failed_step_stops_new_starts_and_is_named(tmp_path):
    # b fails while a still runs: a ends 2 s after b's end line, time enough for the runner to see b's exit first
    steps = [_step(tmp_path, "a", seconds=2.0, after="end b"), _step(tmp_path, "b", code=3),
             _step(tmp_path, "c", needs=("a",)), _step(tmp_path, "d")]
    lines: list[str] = []
    with pytest.raises(UserError, match=r"study step 2/4 \(step b, exit code 3\) failed; fix it"):
        run_steps(steps, LAUNCHER, jobs=2, echo=lines.append)
    t = _times(tmp_path)
    assert ("end", "a") in t  # the running step was let finish
    assert ("start", "c") not in t and ("start", "d") not in t  # nothing new after the failure
    assert lines[0] == "[2/4] step b: failed with exit code 3; waiting for 1 running step(s)"  # said at once


def test_a_finished_step_is_skipped(tmp_path):
    done = _step(tmp_path, "a")
    done.out.mkdir()
    (done.out / MARKER).write_text(json.dumps({"kind": "train", "finished": True, "files": {}}))
    lines: list[str] = []
    run_steps([done, _step(tmp_path, "b", needs=("a",))], LAUNCHER, jobs=2, echo=lines.append)
    assert lines[0] == "[1/2] step a: finished earlier, skipped"
    assert set(_times(tmp_path)) == {("start", "b"), ("end", "b")}


def test_a_second_lock_on_the_same_folder_is_refused_until_the_first_is_gone(tmp_path):
    with study_lock(tmp_path), pytest.raises(UserError, match="another study runner .* is working in this folder"), \
            study_lock(tmp_path):
        pass
    with study_lock(tmp_path):  # released after the block
        pass


def test_each_job_gets_its_share_of_the_cpus_unless_the_caller_chose():
    assert job_environment(1, 1, cpus=2, base={"PATH": "/bin"}) == {"PATH": "/bin"}
    env = job_environment(2, 1, cpus=2, base={})
    assert env == {"OMP_NUM_THREADS": "1", "REPSEP_CORRUPT_THREADS": "1", "REPSEP_QUIET": "1"}
    assert job_environment(2, 2, cpus=16, base={})["OMP_NUM_THREADS"] == "4"
    assert job_environment(3, 1, cpus=2, base={})["OMP_NUM_THREADS"] == "1"  # never 0
    assert job_environment(2, 1, cpus=8, base={"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"
