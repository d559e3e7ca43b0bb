"""The study's step executor: steps side by side up to ``jobs``, a step only after its needs, a failure stops new
starts, finished steps skipped, one runner per folder, each job's thread share."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.study.execute import Step, job_environment, run_steps, study_lock
from repsep.errors import UserError
from repsep.ownership import MARKER, OwnedFolder

# a stand-in command: ``STEP NAME LOG SECONDS CODE`` logs its start and end (wall clock) and exits with CODE
STEP_SCRIPT = """
import sys, time
name, log, seconds, code = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
with open(log, "a") as f: f.write(f"start {name} {time.time()}\\n")
time.sleep(seconds)
with open(log, "a") as f: f.write(f"end {name} {time.time()}\\n")
sys.exit(code)
"""
LAUNCHER = (sys.executable, "-c", STEP_SCRIPT)
ROOT = Path(__file__).resolve().parents[1]


def _step(tmp_path: Path, name: str, *, needs: tuple[str, ...] = (), seconds: float = 1.5, code: int = 0) -> Step:
    return Step(f"step {name}", "train", tmp_path / name, (name, str(tmp_path / "log.txt"), str(seconds), str(code)),
                tuple(tmp_path / n for n in needs))


def _times(tmp_path: Path) -> dict[tuple[str, str], float]:
    lines = (tmp_path / "log.txt").read_text().split()
    return {(lines[i], lines[i + 1]): float(lines[i + 2]) for i in range(0, len(lines), 3)}


def test_two_jobs_overlap_and_a_step_waits_for_its_needs(tmp_path):
    steps = [_step(tmp_path, "a", seconds=1.0), _step(tmp_path, "b", seconds=2.0),
             _step(tmp_path, "c", needs=("a", "b"), seconds=0.1)]
    lines: list[str] = []
    run_steps(steps, LAUNCHER, jobs=2, echo=lines.append)
    t = _times(tmp_path)
    assert t["start", "b"] < t["end", "a"] and t["start", "a"] < t["end", "b"]  # side by side
    assert t["start", "c"] >= max(t["end", "a"], t["end", "b"])  # after both of its needs
    assert sorted(line.split(":")[0] for line in lines) == ["[1/3] step a", "[2/3] step b", "[3/3] step c"]


def test_one_job_runs_the_steps_one_after_another(tmp_path):
    run_steps([_step(tmp_path, "a", seconds=0.2), _step(tmp_path, "b", seconds=0.2)], LAUNCHER, jobs=1,
              echo=lambda _: None)
    t = _times(tmp_path)
    assert t["start", "b"] >= t["end", "a"]


def test_a_failed_step_stops_new_starts_and_is_named(tmp_path):
    steps = [_step(tmp_path, "a", seconds=1.5), _step(tmp_path, "b", seconds=0.1, code=3),
             _step(tmp_path, "c", needs=("a",), seconds=0.1), _step(tmp_path, "d", seconds=0.1)]
    with pytest.raises(UserError, match=r"study step 2/4 \(step b\) failed with exit code 3"):
        run_steps(steps, LAUNCHER, jobs=2, echo=lambda _: None)
    t = _times(tmp_path)
    assert ("end", "a") in t  # the running step was let finish
    assert ("start", "c") not in t and ("start", "d") not in t  # nothing new after the failure


def test_a_finished_step_is_skipped(tmp_path):
    done = _step(tmp_path, "a")
    done.out.mkdir()
    (done.out / MARKER).write_text(json.dumps({"kind": "train", "finished": True, "files": {}}))
    lines: list[str] = []
    run_steps([done, _step(tmp_path, "b", needs=("a",), seconds=0.1)], LAUNCHER, jobs=2, echo=lines.append)
    assert lines[0] == "[1/2] step a: finished earlier, skipped"
    assert set(_times(tmp_path)) == {("start", "b"), ("end", "b")}


def test_a_second_runner_in_the_same_folder_is_refused(tmp_path):
    def claim() -> OwnedFolder:
        return OwnedFolder.claim(tmp_path / "study", "study", resume=True)

    with study_lock(claim()), pytest.raises(UserError, match="another study runner is working in this folder"), \
            study_lock(claim()):
        pass
    with study_lock(claim()):  # released after the block
        pass


def test_each_job_gets_its_share_of_the_cpus_unless_the_caller_chose():
    assert job_environment(1, 1, cpus=2, base={"PATH": "/bin"}) == {"PATH": "/bin"}
    env = job_environment(2, 1, cpus=2, base={})
    assert (env["OMP_NUM_THREADS"], env["REPSEP_CORRUPT_THREADS"]) == ("1", "1")
    assert job_environment(2, 2, cpus=16, base={})["OMP_NUM_THREADS"] == "4"
    assert job_environment(3, 1, cpus=2, base={})["OMP_NUM_THREADS"] == "1"  # never 0
    assert job_environment(2, 1, cpus=8, base={"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"


RUNNER_SCRIPT = """
import sys
from pathlib import Path
from analysis.study.execute import Step, run_steps
work = Path(sys.argv[1])
step = Step("step long", "train", work / "long", ("import os, time; open({pid!r}, 'w').write(str(os.getpid())); "
            "time.sleep(60)".format(pid=str(work / "pid")),))
run_steps([step], (sys.executable, "-c"), jobs=1, echo=print)
"""


def test_a_terminated_runner_stops_its_running_steps(tmp_path):
    runner = subprocess.Popen([sys.executable, "-c", RUNNER_SCRIPT, str(tmp_path)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while not (tmp_path / "pid").is_file() or not (tmp_path / "pid").read_text():
        assert time.monotonic() < deadline and runner.poll() is None, "the step never started"
        time.sleep(0.1)
    step_pid = int((tmp_path / "pid").read_text())
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):  # the step was stopped and reaped, not left training as an orphan
        os.kill(step_pid, 0)
