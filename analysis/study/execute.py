"""Execute a study's steps: each one ``repsep-bench`` process, up to ``jobs`` at once, a step only after the steps
it needs; a step whose folder already holds its finished result is skipped.

With ``jobs`` > 1 each process gets its share of the CPUs (``OMP_NUM_THREADS`` and ``REPSEP_CORRUPT_THREADS``,
unless the caller's environment sets them): on a small CPU two 1-thread trainings of a tiny model go faster together
than one 2-thread training alone (``scripts/bench_study_jobs.py`` prints the ratio). Only one runner works in a
study folder at a time (an exclusive lock on its ``.study.lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from repsep.errors import UserError
from repsep.ownership import MARKER, OwnedFolder

LOCK = ".study.lock"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "REPSEP_CORRUPT_THREADS")
POLL_S = 0.2


@dataclass(frozen=True)
class Step:
    """One command of the study: ``argv`` for ``repsep-bench``, done when ``out`` holds a finished ``kind``;
    it starts only after the steps writing ``needs`` (their ``out`` folders) have finished."""

    label: str
    kind: str
    out: Path
    argv: tuple[str, ...]
    needs: tuple[Path, ...] = ()


def is_done(step: Step) -> bool:
    """Whether the step's folder holds a finished result of its kind (the report is always rebuilt)."""
    if step.kind == "report":
        return False
    try:
        record = json.loads((step.out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record.get("kind") == step.kind and bool(record.get("finished"))


def available_cpus() -> int:
    """The CPUs this process may run on."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def job_environment(jobs: int, nproc: int, *, cpus: int, base: dict[str, str]) -> dict[str, str]:
    """The environment of every step's process: with ``jobs`` > 1, ``cpus // (jobs * nproc)`` threads (>= 1) for
    torch and for corruption, except where ``base`` already sets them."""
    env = dict(base)
    if jobs > 1:
        share = str(max(1, cpus // (jobs * nproc)))
        for name in THREAD_VARIABLES:
            if not env.get(name, "").strip():
                env[name] = share
    return env


@contextlib.contextmanager
def terminations_raise() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise SystemExit (so ``finally`` blocks stop the running steps instead
    of leaving them training on as orphans); the previous handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def study_lock(folder: OwnedFolder) -> Iterator[None]:
    """Hold the study folder's lock (an empty file the folder records) for the block; refuse a second runner."""
    if not folder.has(LOCK):
        folder.write_text(LOCK, "")
    with open(folder.path / LOCK, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{folder.path}: another study runner is working in this folder; wait for it or "
                            "stop it first") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _stopping_on_exit(running: dict[int, tuple[subprocess.Popen, Step, float]]) -> Iterator[None]:
    """Terminate (and wait for) the processes still in ``running`` when the block exits."""
    try:
        yield
    finally:
        for proc, _, _ in running.values():
            proc.terminate()
        for proc, _, _ in running.values():
            proc.wait()


def run_steps(steps: Sequence[Step], launcher: Sequence[str], *, jobs: int = 1, env: dict[str, str] | None = None,
              echo: Callable[[str], None] = print) -> None:
    """Run every unfinished step of ``steps`` (in plan order among those whose needs are met), ``jobs`` at once.

    One line per step: skipped, or done with its wall time. A failing step stops new starts; the running ones are
    let finish, then a UserError names the failed step. An interruption of the runner (Ctrl-C, SIGTERM, SIGHUP)
    stops its running steps and waits for them.
    """
    total = len(steps)
    number = {id(step): i for i, step in enumerate(steps, 1)}
    finished: set[Path] = set()
    waiting: list[Step] = []
    for step in steps:
        if is_done(step):
            finished.add(step.out)
            echo(f"[{number[id(step)]}/{total}] {step.label}: finished earlier, skipped")
        else:
            waiting.append(step)
    running: dict[int, tuple[subprocess.Popen, Step, float]] = {}
    failed: list[tuple[Step, int]] = []
    with terminations_raise(), _stopping_on_exit(running):
        while waiting or running:
            for step in [s for s in waiting if not failed and all(n in finished for n in s.needs)]:
                if len(running) >= jobs:
                    break
                waiting.remove(step)
                proc = subprocess.Popen([*launcher, *step.argv], stdout=subprocess.DEVNULL, env=env)
                running[proc.pid] = (proc, step, time.perf_counter())
            if not running:
                break  # nothing can start: a step failed (or a need is not in the plan)
            time.sleep(POLL_S)
            for pid, (proc, step, start) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[pid]
                if proc.returncode != 0:
                    failed.append((step, proc.returncode))
                    continue
                finished.add(step.out)
                echo(f"[{number[id(step)]}/{total}] {step.label}: done in {time.perf_counter() - start:.0f} s")
    if failed:
        step, code = failed[0]
        raise UserError(f"study step {number[id(step)]}/{total} ({step.label}) failed with exit code {code}; "
                        "fix it and run the study again to continue from there")
    if waiting:
        raise RuntimeError(f"study steps need folders no step writes: {[s.label for s in waiting]}")
