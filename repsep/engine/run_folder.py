"""A training run's folder (an :class:`repsep.ownership.OwnedFolder` of kind ``train``, its files listed in
:mod:`repsep.engine.train`): what ``train`` may do with it, the resume check, its metrics log, its saved config."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from repsep.config import TrainConfig, config_from_dict
from repsep.engine.checkpoint import writing
from repsep.errors import UserError
from repsep.ownership import OwnedFolder, lock_folder

#: config keys that may change between a run and its resumption (they do not affect the weights)
RESUME_FREE_KEYS = ("data.num_workers", "data.scan", "schedule.val_interval", "schedule.ckpt_interval",
                    "schedule.log_interval")


class RunLock:
    """Rank 0's exclusive lock on a run folder (:func:`repsep.ownership.lock_folder`), from entry when the folder
    exists, else from :meth:`take` right after it is made: a second ``train`` on the folder is refused."""

    BUSY = "another train is writing in this run folder; wait for it or stop it first"

    def __init__(self, out: Path, *, active: bool) -> None:
        self.out, self.active, self.held = out, active, False
        self._stack = contextlib.ExitStack()

    def take(self) -> None:
        """Lock the folder if it exists and is not locked yet (a no-op off rank 0)."""
        if self.active and not self.held and self.out.is_dir():
            self._stack.enter_context(lock_folder(self.out, self.BUSY))
            self.held = True

    def __enter__(self) -> RunLock:
        self.take()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def claim_out_dir(out: Path, resume: bool, overwrite: bool, inputs: tuple = ()) -> tuple[str, OwnedFolder]:
    """What to do with the run folder ``out`` (an :class:`OwnedFolder` of kind ``train``); no side effects.

    Returns (action, folder record): ``fresh`` (train into ``out``), ``resume`` (continue its checkpoint), ``done``
    (finished and ``--resume``: nothing to do) or ``replace`` (``--overwrite`` of a previous run: train beside it and
    swap in only after success). Refused: a foreign file in ``out``, another command's result, a finished run
    without a flag, an unfinished one without ``--resume``/``--overwrite``.
    """
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    owned = OwnedFolder.claim(out, "train", overwrite=overwrite, resume=resume, inputs=inputs, create=False)
    if owned.finished:
        return ("done" if resume else "replace"), owned
    if not owned.files:
        return "fresh", owned
    if overwrite:
        return "replace", owned
    if resume:
        return ("resume" if owned.has("checkpoint_last.pt") else "fresh"), owned
    raise UserError(f"--out {out}: holds an unfinished train run; pass --resume to continue it or --overwrite to "
                    "start over")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def check_same_config(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    """Refuse to resume a run whose saved config differs from ``cfg`` (except in :data:`RESUME_FREE_KEYS`)."""
    a, b = _flat(saved), _flat(cfg.to_dict())
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUME_FREE_KEYS)
    if diff:
        shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in diff[:4])
        raise UserError(f"{path}: the run was started with a different config ({shown}); resume with the same "
                        "config or start a new --out")


class MetricsLog:
    """``metrics.jsonl`` in an :class:`OwnedFolder` (None on non-main ranks: appends are dropped), rewritten
    atomically on every append (a reader never sees a partial line) and recorded in the folder's marker."""

    NAME = "metrics.jsonl"

    def __init__(self, folder: OwnedFolder | None, keep_until: int | None = None):
        self.folder = folder
        self.lines: list[str] = []
        if folder is not None and keep_until is not None and folder.has(self.NAME):
            text = folder.read_bytes(self.NAME).decode("utf-8")  # digest-checked
            self.lines = [ln for ln in text.splitlines() if ln.strip() and json.loads(ln).get("iter", 0) <= keep_until]

    def append(self, record: dict[str, Any]) -> None:
        from repsep.io import json_safe

        if self.folder is None:
            return
        self.lines.append(json.dumps(json_safe(record), sort_keys=True, allow_nan=False))
        with writing(self.folder.path / self.NAME):
            self.folder.write_text(self.NAME, "\n".join(self.lines) + "\n")


def load_run_config(out: str | Path) -> TrainConfig:
    """The resolved config saved in a run folder."""
    from repsep.config import read_yaml

    path = Path(out) / "config.yaml"
    return config_from_dict(read_yaml(path), str(path))
