"""Fault injection with real processes: SIGKILL a command at a chosen point (found by polling for a file it writes),
then check that nothing half-written is visible under a final name and that a rerun finishes with outputs equal to
an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli
from conftest import TINY_TRAIN_OVERRIDES
from PIL import Image

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # same arithmetic as this process
# glass_blur (a per-pixel Python loop in the reference backend) keeps work pending after the kill point
CORRUPT_ARGS = ["--corruptions", "glass_blur,contrast", "--severities", "1,5", "--num-images", "6"]


def _popen(argv: list[str], log: Path, *, torchrun: bool = False) -> subprocess.Popen:
    """Start ``python -m repsep.cli ARGV`` (under a 2-process torchrun if asked), stdout+stderr into ``log``
    (a file, so a chatty process never blocks on a full pipe while the test polls)."""
    prefix = ["-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29657"] if torchrun else []
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, *prefix, "-m", "repsep.cli", *argv], env=ENV, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log
    return proc


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 240.0) -> None:
    """Poll ``ready()`` every 20 ms until it is true; fails if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"process ended (code {proc.returncode}) before the kill point: {proc.log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("kill point not reached in time")
        time.sleep(0.02)


def _kill_when(proc: subprocess.Popen, ready) -> None:
    """SIGKILL the process as soon as ``ready()``, and reap it."""
    _wait_for(proc, ready)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def model(synthcity_small, tmp_path_factory):
    """An untrained tiny baseline export whose dataset is :func:`synthcity_small` (8 val images, 64x128)."""
    from repsep.data.labels import CITYSCAPES
    from repsep.engine.checkpoint import export_model
    from repsep.models import build_model, model_config

    torch.manual_seed(0)
    cfg = model_config("baseline_vit", size="tiny", num_classes=19, img_size=(64, 128))
    path = tmp_path_factory.mktemp("faults") / "model_final.pt"
    export_model(path, build_model(cfg), cfg, CITYSCAPES, f"synthcity:{synthcity_small}", {})
    return path


def test_train_killed_after_a_checkpoint_resumes_to_identical_weights(synthcity_small, tmp_path):
    from repsep.config import load_config
    from repsep.engine.train import train

    sets = [f"data.spec=synthcity:{synthcity_small}", *TINY_TRAIN_OVERRIDES, "schedule.iters=4",
            "schedule.ckpt_interval=2"]
    train(load_config("synthcity_tiny_baseline", sets), tmp_path / "ref", progress=False)
    run = tmp_path / "run"
    argv = ["train", "synthcity_tiny_baseline", "--out", str(run), *[x for s in sets for x in ("--set", s)]]
    proc = _popen(argv, tmp_path / "log")
    _kill_when(proc, lambda: (run / "checkpoint_last.pt").exists())  # killed during iteration 3
    assert not (run / "DONE").exists() and not (run / "model_final.pt").exists()
    assert torch.load(run / "checkpoint_last.pt", weights_only=True)["iter"] == 2
    assert run_cli([*argv, "--resume"]) == 0
    final = torch.load(run / "model_final.pt", weights_only=True)["state_dict"]
    ref = torch.load(tmp_path / "ref" / "model_final.pt", weights_only=True)["state_dict"]
    assert final.keys() == ref.keys() and all(torch.equal(final[k], ref[k]) for k in ref)


def test_materialize_killed_midway_reuses_finished_files(synthcity_small, tmp_path):
    argv = ["corruptions", "materialize", "--data", f"synthcity:{synthcity_small}", "--corruptions",
            "glass_blur,contrast", "--severities", "1,3"]
    assert run_cli([*argv, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "out"
    pngs = lambda: [p for p in out.rglob("*.png") if not p.name.startswith(".")]  # noqa: E731
    proc = _popen([*argv, "--out", str(out)], tmp_path / "log")
    _kill_when(proc, lambda: len(pngs()) >= 5)
    done = pngs()
    assert 5 <= len(done) < 32 and not (out / "manifest.json").exists()
    for p in done:  # nothing half-written under a final name
        with Image.open(p) as img:
            img.load()
    mtimes = {p: p.stat().st_mtime_ns for p in done}
    assert run_cli([*argv, "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in done} == mtimes  # finished files were reused, not rewritten
    assert not list(out.rglob(".*.tmp"))
    ref, got = _files(tmp_path / "ref"), _files(out)
    for name in ("manifest.json", ".repsep-bench.json"):  # the command line (--out) and its digest differ
        ref.pop(name), got.pop(name)
    assert got == ref and len(ref) == 2 * 2 * 8 + 1  # and settings.json


def test_corrupt_killed_midway_reuses_finished_cells(model, tmp_path):
    argv = ["corrupt", "--model", str(model), *CORRUPT_ARGS]
    assert run_cli([*argv, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "out"
    cells = lambda: [p for p in (out / "cells").glob("*.pt")] if (out / "cells").is_dir() else []  # noqa: E731
    proc = _popen([*argv, "--out", str(out)], tmp_path / "log")
    _kill_when(proc, lambda: len(cells()) >= 2)
    done = cells()
    assert 2 <= len(done) < 5 and not (out / "robustness.json").exists()
    for p in done:
        assert "key" in torch.load(p, weights_only=True)  # complete, loadable
    mtimes = {p: p.stat().st_mtime_ns for p in done}
    assert run_cli([*argv, "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in done} == mtimes
    names = ("robustness.json", "robustness.csv", "robustness.md", "per_image.npz")
    assert {n: (out / n).read_bytes() for n in names} == {n: (tmp_path / "ref" / n).read_bytes() for n in names}


def _rank_pid(root: int, rank: int) -> int | None:
    """The pid of the descendant of ``root`` whose environment has RANK=<rank> (a torchrun worker)."""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
            if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return pid
        except OSError:
            continue
    return None


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the torchrun workers")
def test_eval_with_one_rank_killed_fails_without_results(model, tmp_path):
    out, preds = tmp_path / "eval", tmp_path / "pred"
    # slide windows x 4 scales x flip: seconds per image, so the job is still running when rank 1 is killed
    proc = _popen(["eval", "--model", str(model), "--workers", "0", "--mode", "slide", "--crop", "32x32", "--stride",
                   "16x16", "--scales", "0.5,1.0,1.5,2.0", "--flip", "--save-pred", str(preds), "--out", str(out)],
                  tmp_path / "log", torchrun=True)
    victim: list[int] = []

    def started() -> bool:  # rank 1 exists and rank 0 has saved its first prediction
        if not victim and (pid := _rank_pid(proc.pid, 1)) is not None:
            victim.append(pid)
        return bool(victim) and any(preds.glob("*.png"))

    _wait_for(proc, started)
    os.kill(victim[0], signal.SIGKILL)
    assert proc.wait(timeout=180) != 0
    err = proc.log.read_text()
    assert not (out / "metrics.json").exists() and not (out / "manifest.json").exists()
    assert "repsep.cli FAILED" in err and "(SIGKILL)" in err, err[-2000:]  # torchrun names the killed rank
