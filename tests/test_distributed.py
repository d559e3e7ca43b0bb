"""repsep.engine.distributed: single-process behaviour, and real 2-process gloo jobs (train + eval) via torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from conftest import TINY_TRAIN_OVERRIDES

from repsep.engine import distributed as dist


def test_single_process_helpers_are_identity():
    assert dist.init_from_env() == torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    t = torch.tensor([1, 2])
    assert dist.all_reduce_sum(t) is t and t.tolist() == [1, 2]
    assert dist.all_gather_object({"a": 1}) == [{"a": 1}]
    assert dist.broadcast_object(5) == 5
    dist.barrier()
    dist.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-port",
           str(free_port()), "-m", "repsep.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_two_process_train_and_eval(synthcity_small, tiny_run, tmp_path):
    # training: DDP over gloo, sharded sampler, only rank 0 writes
    sets = [f"--set=data.spec=synthcity:{synthcity_small}", *(f"--set={s}" for s in TINY_TRAIN_OVERRIDES)]
    run = torchrun("train", "synthcity_tiny_baseline", "--out", str(tmp_path / "run"), *sets)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "run" / "DONE").exists()
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["world_size"] == 2
    assert run.stdout.count("finished 2 iterations") == 1  # printed by rank 0 only

    # evaluation: 2 processes give exactly the metrics of 1 (same model, one image per batch)
    from repsep.engine.evaluate import evaluate_checkpoint

    model = tiny_run / "model_final.pt"
    ev = torchrun("eval", "--model", str(model), "--out", str(tmp_path / "ev2"), "--workers", "0")
    assert ev.returncode == 0, ev.stderr[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        evaluate_checkpoint(model, tmp_path / "ev1", num_workers=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    two = (tmp_path / "ev2" / "metrics.json").read_text()
    assert two == (tmp_path / "ev1" / "metrics.json").read_text()
    assert json.loads(two)["num_images"] == 8
    import numpy as np

    a, b = np.load(tmp_path / "ev1" / "per_image.npz"), np.load(tmp_path / "ev2" / "per_image.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        assert np.array_equal(a[k], b[k]), k
