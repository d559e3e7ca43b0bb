"""One runner per study folder, through the real CLI: a second ``study`` on a folder being worked in is refused;
SIGTERM of the runner stops its training step; a step left running by a SIGKILLed runner still holds the folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import TINY_TRAIN_OVERRIDES

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _study(spec: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "repsep.cli", "study", str(spec), "--out", str(out)]


def _started(runner: subprocess.Popen) -> int:
    """Wait until the runner's first step (a training) is running; its pid."""
    deadline = time.monotonic() + 120
    while not (kids := _children(runner.pid)):
        assert runner.poll() is None and time.monotonic() < deadline, "the training step never started"
        time.sleep(0.1)
    return kids[0]


def test_one_runner_per_folder_and_a_stopped_runner_stops_its_step(synthcity_small, tmp_path):
    spec = tmp_path / "study.yaml"  # a training long enough to be caught running
    spec.write_text(yaml.safe_dump({
        "data": f"synthcity:{synthcity_small}", "iterations": 100000, "seeds": [0],
        "train_set": [s for s in TINY_TRAIN_OVERRIDES if not s.startswith("schedule.iters")],
        "models": {"baseline": {"recipe": "synthcity_tiny_baseline"}}}))
    out = tmp_path / "study"
    runner = subprocess.Popen(_study(spec, out), env=ENV, stdout=subprocess.DEVNULL)
    step = _started(runner)
    second = subprocess.run(_study(spec, out), env=ENV, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and second.stderr.strip().splitlines() == [
        f"error: {out}: another study runner (or a step it started) is working in this folder; wait for it or "
        "stop it first"]

    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=60) == 128 + signal.SIGTERM
    assert not _alive(step)  # stopped and reaped, not left training as an orphan

    runner = subprocess.Popen(_study(spec, out), env=ENV, stdout=subprocess.DEVNULL)
    orphan = _started(runner)
    runner.kill()  # no cleanup at all: its training runs on, and still holds the folder's lock
    runner.wait()
    try:
        third = subprocess.run(_study(spec, out), env=ENV, capture_output=True, text=True, timeout=120)
        assert third.returncode == 2 and "another study runner (or a step it started)" in third.stderr
    finally:
        os.kill(orphan, signal.SIGKILL)
