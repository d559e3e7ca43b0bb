"""The torchrun entry of ``scripts/gpu_check.py``: join a process group, check one all-reduce, run the CLI in it.

    torchrun --standalone --nproc-per-node 1 scripts/gpu_check_dist.py nccl PROBE.json eval --model M --out O

A world of one process normally runs without a process group (``repsep.engine.distributed``); this entry makes
one with BACKEND (nccl on the GPU, gloo on the CPU), so the launcher, the group's set-up and the command's
barriers all run through it. Rank 0 writes PROBE.json: backend, world size, the all-reduce's result.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist


def main() -> None:
    backend, probe, args = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    cuda = backend == "nccl"
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, device_id=device if cuda else None)
    world, rank = dist.get_world_size(), dist.get_rank()
    value = torch.full((1,), float(rank + 1), device=device)
    dist.all_reduce(value)
    expected = world * (world + 1) / 2
    if value.item() != expected:
        raise SystemExit(f"gpu_check_dist: all_reduce gave {value.item()}, expected {expected}")
    if rank == 0:
        probe.write_text(json.dumps({"backend": dist.get_backend(), "world_size": world, "all_reduce": value.item()}))
    from repsep.cli import main as cli

    cli(args)


if __name__ == "__main__":
    main()
