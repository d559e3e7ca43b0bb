"""How many threads corrupt images, chosen for the situation rather than torch's default (one per core).

Measured on 2 cores (docs/performance.md): the torch backend at 512x512 is 22x the reference idle with 2 threads
but 1.03x while another 2-thread process runs; with 1 thread it is 21.6x under that load. Intra-op threads
that outnumber the free cores wait on each other at every parallel region, so:

* ``worker``  (a DataLoader worker corrupts, the workers run side by side): 1 thread each, for torch and OpenCV;
* ``process`` (the sweep's own process corrupts on the CPU, between the model's steps, or ``materialize`` with
  no workers): the cores the rest of the machine leaves free (cores - load), shared by this host's ranks, >= 1;
* ``device``  (corruption on a GPU): the CPU thread count is left as it is.

``REPSEP_CORRUPT_THREADS`` overrides the choice: a count, or ``torch`` for torch's own default. The pixels never
depend on the count (one generator per image, fixed RNG bands), only the speed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from repsep.errors import UserError

ENV = "REPSEP_CORRUPT_THREADS"
WHERE = ("worker", "process", "device")


def parse_override(value: str | None) -> int | str | None:
    """The ``REPSEP_CORRUPT_THREADS`` value: None (unset/empty), ``"torch"`` or a count >= 1."""
    if value is None or not value.strip():
        return None
    value = value.strip().lower()
    if value == "torch":
        return value
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{ENV}={value!r}: must be a thread count >= 1 or 'torch'")
    return int(value)


def choose_threads(where: str, *, cores: int, load: float, ranks: int = 1,
                   override: int | str | None = None) -> tuple[int | None, str]:
    """The corruption thread count for a situation, and the reason in words.

    Args:
        where: ``worker``, ``process`` or ``device`` (see the module docstring).
        cores: the CPUs this process may use.
        load: runnable threads of the rest of the machine (see :func:`machine_load`).
        ranks: processes of this sweep on this host (torchrun's local world size); they share the free cores.
        override: :func:`parse_override` of the environment.

    Returns:
        (threads, reason): threads None leaves the current count alone.
    """
    if where not in WHERE:
        raise ValueError(f"where must be one of {WHERE}, got {where!r}")
    if override == "torch":
        return None, f"{ENV}=torch: torch's default"
    if isinstance(override, int):
        return override, f"{ENV}={override}"
    if where == "worker":
        return 1, "DataLoader worker: the workers run side by side, one thread each"
    if where == "device":
        return None, "corruption on the accelerator: CPU threads left as they are"
    per_rank = max(cores - load, 0.0) / max(ranks, 1)
    threads = max(1, min(int(per_rank + 0.5), max(cores // max(ranks, 1), 1)))
    return threads, f"{cores} cores, load {load:.1f} from other work, {ranks} rank(s) on this host"


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, else os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_load() -> float:
    """Busy threads of the rest of the machine: the larger of the 1-minute load average and the runnable threads
    right now less this one (the average lags a process that just started by a minute)."""
    try:
        with open("/proc/loadavg") as f:
            fields = f.read().split()
        return max(float(fields[0]), float(int(fields[3].split("/")[0]) - 1))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0


def plan(where: str, ranks: int | None = None) -> tuple[int | None, str]:
    """:func:`choose_threads` for this machine now (ranks: LOCAL_WORLD_SIZE by default) and the environment."""
    if ranks is None:
        ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return choose_threads(where, cores=available_cores(), load=machine_load(), ranks=ranks,
                          override=parse_override(os.environ.get(ENV)))


def _set(threads: int) -> None:
    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass


@contextmanager
def corruption_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch and OpenCV threads, then restore both (None: no change)."""
    if threads is None:
        yield
        return
    import cv2

    before, before_cv2 = torch.get_num_threads(), cv2.getNumThreads()
    _set(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before_cv2)


_worker_pid: int | None = None


def in_worker() -> bool:
    """Whether this code runs in a DataLoader worker process."""
    return torch.utils.data.get_worker_info() is not None


def configure_worker() -> None:
    """Once per DataLoader worker process: the ``worker`` thread count for torch and OpenCV."""
    global _worker_pid
    if _worker_pid == os.getpid():
        return
    _worker_pid = os.getpid()
    threads, _ = plan("worker")
    if threads is not None:
        _set(threads)
