"""Process-group helpers for ``torchrun`` (DDP): NCCL on CUDA, gloo on CPU; single-process when not launched.

``torchrun --nproc-per-node N -m repsep.cli train ...`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
:func:`init_from_env` reads them. Without them every helper behaves as a world of one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env() -> torch.device:
    """Join the process group described by the torchrun environment (if any); return this process's device.

    CUDA when available (``cuda:LOCAL_RANK``), else CPU. Calling it twice is harmless.
    """
    use_cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", device_id=device if use_cuda else None)
    return device


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (the only process that writes files and shows progress bars)."""
    return rank() == 0


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks in place (a no-op in a single process); returns ``t``."""
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_object(obj: object) -> list:
    """Every rank's ``obj`` as a list ordered by rank (``[obj]`` in a single process)."""
    if world_size() == 1:
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (used to share a decision, e.g. an error, made on rank 0)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (call once at the end of a command)."""
    if is_initialized():
        dist.destroy_process_group()
