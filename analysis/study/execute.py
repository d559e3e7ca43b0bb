"""Execute a study's steps: each one ``repsep-bench`` process, up to ``jobs`` at once, a step only after the steps
it needs; a step whose folder already holds its finished result is skipped.

With ``jobs`` > 1 each process gets its share of the CPUs (``OMP_NUM_THREADS`` and ``REPSEP_CORRUPT_THREADS``,
unless the caller's environment sets them): on a small CPU two 1-thread trainings of a tiny model go faster together
than one 2-thread training alone (``scripts/bench_study_jobs.py`` prints the ratio); the share stays fixed while
fewer steps can run (the report, a lone last training), so every step of a study sees the same thread count. Only
one runner works in a study folder at a time: it holds an exclusive ``flock`` on the folder itself, and so does
every step it starts (they inherit it), so a new runner is refused even while steps of a killed one run on.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from corruptions.threads import ENV as CORRUPT_THREADS_ENV
from repsep.errors import UserError
from repsep.ownership import MARKER, lock_folder
from repsep.progress import QUIET_ENV

THREAD_VARIABLES = ("OMP_NUM_THREADS", CORRUPT_THREADS_ENV)
POLL_S = 0.2
INTERRUPT_GRACE_S = 10.0  # after Ctrl-C the steps got SIGINT too: let them unwind before terminating them
TERMINATE_WAIT_S = 30.0  # then SIGKILL


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


def job_environment(jobs: int, nproc: int, *, cpus: int, base: dict[str, str]) -> dict[str, str]:
    """The environment of every step's process: with ``jobs`` > 1, ``cpus // (jobs * nproc)`` threads (>= 1) for
    torch and for corruption, and no progress bars (side-by-side bars would overwrite each other), except where
    ``base`` already sets them."""
    env = dict(base)
    if jobs > 1:
        share = str(max(1, cpus // (jobs * nproc)))
        for name, value in zip((*THREAD_VARIABLES, QUIET_ENV), (share, share, "1"), strict=True):
            if not env.get(name, "").strip():
                env[name] = value
    return env


def study_lock(folder: Path) -> contextlib.AbstractContextManager[int]:
    """Hold an exclusive lock on the (existing) study ``folder`` for the block; yields the locked descriptor, for
    the steps to inherit. A folder locked by another runner, or by steps it started, is refused."""
    return lock_folder(folder, "another study runner (or a step it started) is working in this folder; wait for "
                               "it or stop it first")


def _stop(running: dict[int, tuple[subprocess.Popen, Step, float]], *, grace: float) -> None:
    """Stop the processes in ``running``: ``grace`` seconds to exit by themselves, then SIGTERM, then SIGKILL."""
    procs = [proc for proc, _, _ in running.values()]
    deadline = time.monotonic() + grace
    while any(proc.poll() is None for proc in procs) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=TERMINATE_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_steps(steps: Sequence[Step], launcher: Sequence[str], *, jobs: int = 1, env: dict[str, str] | None = None,
              lock_fd: int | None = None, echo: Callable[[str], None] = print) -> None:
    """Run every unfinished step of ``steps`` (in plan order among those whose needs are met), ``jobs`` at once.

    One line per step: skipped, done with its wall time, or failed. A failing step stops new starts; the running
    ones are let finish, then a UserError names the failed steps. An interruption of the runner (Ctrl-C; SIGTERM,
    which the CLI turns into SystemExit) stops its running steps and waits for them. Every step inherits
    ``lock_fd`` (the study lock).
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
    inherit = () if lock_fd is None else (lock_fd,)
    try:
        while waiting or running:
            for step in [s for s in waiting if not failed and all(n in finished for n in s.needs)]:
                if len(running) >= jobs:
                    break
                waiting.remove(step)
                proc = subprocess.Popen([*launcher, *step.argv], stdout=subprocess.DEVNULL, env=env,
                                        pass_fds=inherit)
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
                    left = f"; waiting for {len(running)} running step(s)" if running else ""
                    echo(f"[{number[id(step)]}/{total}] {step.label}: failed with exit code {proc.returncode}{left}")
                    continue
                finished.add(step.out)
                echo(f"[{number[id(step)]}/{total}] {step.label}: done in {time.perf_counter() - start:.0f} s")
    except KeyboardInterrupt:
        _stop(running, grace=INTERRUPT_GRACE_S)
        raise
    finally:
        _stop(running, grace=0.0)
    if failed:
        named = ", ".join(f"{number[id(step)]}/{total} ({step.label}, exit code {code})" for step, code in failed)
        raise UserError(f"study step {named} failed; fix it and run the study again to continue from there")
    if waiting:
        raise RuntimeError(f"study steps need folders no step writes: {[s.label for s in waiting]}")
