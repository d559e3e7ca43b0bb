"""Checks that make a ``torchrun`` job over several nodes fail the same way on every rank, with one error line.

On one node a bad input is the same for every process; over several nodes each node reads its own copy of the
inputs and may not see the others' files. Three collective checks (no-ops in a single process):

- :func:`together`: a block every rank runs; if it raises on any rank, every rank raises the first error (lowest
  rank, prefixed with that rank and host when it is not rank 0), so no rank waits in a collective for a rank that
  has already stopped.
- :func:`check_same_inputs`: every rank's settings (model sha256, dataset fingerprint, image ids, the device
  type per cell ...) equal rank 0's; else every rank raises naming the first differing field.
- :func:`check_shared_folder`: rank 0 writes a file with a random token into the output folder, every rank reads it
  at the same path; a rank that cannot see it raises "--out must be on a shared filesystem". Rank 0 removes it
  again before anything else is written (a killed run's leftover is removed by :func:`remove_probes`).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from repsep.engine import distributed as dist
from repsep.errors import UserError

PROBE_PREFIX = ".shared-check-"
"""Name prefix of the probe file rank 0 writes into the output folder (removed again at once)."""
PROBE_WAIT_S = 5.0
"""How long a rank retries to see rank 0's probe (network filesystems publish a new file after a short delay)."""


def host() -> str:
    return socket.gethostname()


def launch() -> dict[str, int]:
    """The process layout of this run, for manifests: ``world_size`` (processes) and ``nodes`` (torchrun's
    ``GROUP_WORLD_SIZE``: the number of nodes / agents; 1 outside torchrun)."""
    return {"world_size": dist.world_size(), "nodes": int(os.environ.get("GROUP_WORLD_SIZE", "1"))}


def _where(rank: int, hosts: list[str]) -> str:
    return f"rank {rank} (host {hosts[rank]})"


def _first(problems: list[tuple[str | None, str]]) -> str | None:
    """The lowest rank's problem; prefixed with its rank and host unless it is rank 0's."""
    hosts = [h for _, h in problems]
    for rank, (problem, _) in enumerate(problems):
        if problem is not None:
            return problem if rank == 0 else f"{_where(rank, hosts)}: {problem}"
    return None


@contextmanager
def together() -> Iterator[None]:
    """Run the block on every rank; if it raised on any rank, raise the first rank's error on every rank.

    A :class:`UserError` or ``OSError`` travels as its message; any other exception is re-raised unchanged on the
    rank where it happened (after telling the others). A single process behaves as without the block.
    """
    if dist.world_size() == 1:
        yield
        return
    problem: str | None = None
    error: Exception | None = None
    try:
        yield
    except UserError as e:
        problem = str(e)
    except OSError as e:
        problem = f"{e.filename or 'cannot read or write'}: {e.strerror or e}"
    except Exception as e:  # told to the other ranks, then re-raised here with its traceback
        problem, error = f"failed ({type(e).__name__}: {e})", e
    first = _first(dist.all_gather_object((problem, host())))
    if error is not None:
        raise error
    if first is not None:
        raise UserError(first)


def check_same_inputs(settings: Mapping[str, Any], what: str) -> None:
    """UserError on every rank when some rank's ``settings`` differ from rank 0's (first differing field first).

    ``what`` names the inputs for the message, e.g. "the model, dataset and --from-disk tree".
    """
    if dist.world_size() == 1:
        return
    from repsep.comparability import differences

    gathered = dist.all_gather_object((dict(settings), host()))
    hosts = [h for _, h in gathered]
    fields = list(gathered[0][0]) + sorted(set().union(*(s for s, _ in gathered)) - set(gathered[0][0]))
    for rank, (theirs, _) in enumerate(gathered[1:], start=1):
        found = differences(theirs, gathered[0][0], fields)
        if found:
            raise UserError(f"{_where(rank, hosts)} reads other inputs than {_where(0, hosts)} ({found[0]}); every "
                            f"node must see the same {what} at the same paths")


def remove_probes(folder) -> None:
    """Delete probe files a killed run left recorded in ``folder`` (an :class:`~repsep.ownership.OwnedFolder`)."""
    for rel in [k for k in folder.files if Path(k).name.startswith(PROBE_PREFIX)]:
        folder.remove(rel)


def _sees(path: Path, token: bytes, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if path.read_bytes() == token:
                return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def check_shared_folder(folder, out: Path, *, wait_s: float = PROBE_WAIT_S) -> None:
    """UserError on every rank when a rank cannot see the files rank 0 writes into the output folder.

    Args:
        folder: rank 0's :class:`~repsep.ownership.OwnedFolder` (created; ``out`` or its staging sibling), None on
            the other ranks.
        out: the output folder as this rank was given it (the staging sibling is found beside it).
    """
    if dist.world_size() == 1:
        return
    probe = None
    if dist.is_main():
        remove_probes(folder)
        token = secrets.token_hex(16)
        probe = (folder.path.name, f"{PROBE_PREFIX}{token[:16]}", token.encode())
        folder.write_bytes(probe[1], probe[2])
    name, rel, token = dist.broadcast_object(probe)
    path = (out.parent / name / rel) if not dist.is_main() else folder.path / rel
    seen = dist.all_gather_object((_sees(path, token, wait_s), host()))
    if dist.is_main():
        folder.remove(rel)
    hosts = [h for _, h in seen]
    blind = [rank for rank, (ok, _) in enumerate(seen) if not ok]
    if blind:
        raise UserError(f"--out {out}: {_where(blind[0], hosts)} cannot see the files {_where(0, hosts)} writes "
                        f"there; with torchrun over several nodes --out must be on a filesystem every node shares, "
                        f"at the same path")
