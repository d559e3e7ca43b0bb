"""Two ``torchrun`` nodes on 127.0.0.1 (gloo, one process each) for the multi-node tests, and their tiny inputs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
import torch

ENV = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the same arithmetic as this process
TIMEOUT_S = 600.0
"""Generous: two torch processes start and rendezvous on a loaded 2-core machine."""
OUTPUTS = ("robustness.json", "robustness.csv", "robustness.md", "per_image.npz")


def make_inputs(folder: Path, seed: int = 0, data: Path | None = None) -> Path:
    """A SynthCity folder ``data`` (default ``folder/data``; 1 train / 4 val, 32x64, made if missing) and an
    untrained tiny baseline ViT for it, ``folder/model.pt`` (weights drawn with ``seed``); returns the model's path."""
    from repsep.data.labels import CITYSCAPES
    from repsep.data.synthcity import generate
    from repsep.engine.checkpoint import export_model
    from repsep.models import build_model, model_config

    data = data or folder / "data"
    if not data.exists():
        generate(data, 1, 4, size=(32, 64), seed=0, workers=1)
    torch.manual_seed(seed)
    cfg = model_config("baseline_vit", size="tiny", num_classes=19, img_size=(32, 64))
    export_model(folder / "model.pt", build_model(cfg), cfg, CITYSCAPES, f"synthcity:{data}", {})
    return folder / "model.pt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nodes:
    """``python -m torch.distributed.run --nnodes 2 --node-rank R --nproc-per-node 1`` for R = 0, 1, each in its own
    session (so that a node can be killed whole: its agent and its worker), logs in ``logs/node{R}.log``."""

    def __init__(self, argv: list[str], logs: Path, cwds: tuple[Path | None, Path | None] = (None, None)) -> None:
        port = free_port()
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = [logs / f"node{r}.log" for r in (0, 1)]
        self.procs: list[subprocess.Popen] = []
        for rank in (0, 1):
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
                   "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
                   "-m", "repsep.cli", *argv]
            with open(self.logs[rank], "w") as f:
                self.procs.append(subprocess.Popen(cmd, env=ENV, cwd=cwds[rank], stdout=f, stderr=subprocess.STDOUT,
                                                   start_new_session=True))

    def log(self, rank: int) -> str:
        return self.logs[rank].read_text()

    def wait(self, timeout: float = TIMEOUT_S) -> list[int]:
        """Both exit codes (kills both and fails the test when they do not end in time)."""
        deadline = time.monotonic() + timeout
        try:
            return [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in self.procs]
        except subprocess.TimeoutExpired:
            self.kill_all()
            pytest.fail(f"the two nodes did not end in {timeout:.0f} s: {self.log(0)[-1500:]}")

    def kill(self, rank: int) -> None:
        """SIGKILL node ``rank``: its torchrun agent and every descendant (torchrun starts each worker in a session
        of its own, so killing the agent's process group would leave the worker running); reaps the agent."""
        root = self.procs[rank].pid
        for pid in [*_descendants(root), root]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.procs[rank].wait(timeout=60)

    def kill_all(self) -> None:
        for rank, p in enumerate(self.procs):
            if p.poll() is None:
                self.kill(rank)

    def wait_for(self, ready, timeout: float = TIMEOUT_S) -> None:
        """Poll ``ready()`` every 20 ms; fails (killing both) if a node ends first or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            ended = [r for r, p in enumerate(self.procs) if p.poll() is not None]
            if ended or time.monotonic() > deadline:
                self.kill_all()
                log = self.log(ended[0] if ended else 0)[-1500:]
                pytest.fail(f"nodes {ended} ended before the point waited for (or time ran out): {log}")
            time.sleep(0.02)


def _descendants(root: int) -> list[int]:
    """Every descendant process of ``root`` (from /proc/PID/task/*/children)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        with suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                todo += children
    return found


def outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}
