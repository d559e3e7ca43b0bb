"""What one ``corrupt`` sweep evaluates and how it runs: :class:`SweepConfig` (every option that decides its
numbers, and those that only decide its speed), their checks, the :class:`Sweep` (which backend and path each cell
takes) and the ``settings`` block a sweep records for the comparability checks."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from corruptions.backends import CorruptionBackend, backend_for, get_backend
from corruptions.cells import CLEAN
from corruptions.dataset import CorruptedDataset, DatasetView, FromDiskCorrupted
from corruptions.materialize import ids_sha256
from corruptions.threads import ENV as THREADS_ENV
from corruptions.threads import parse_override
from corruptions.threads import plan as plan_threads
from repsep.engine.precision import check_precision
from repsep.errors import UserError

CORRUPT_ON = ("auto", "model", "workers")
SCAN = ("full", "headers")
MAX_CORRUPT_BATCH = 4096
MAX_WORKERS = 256
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SweepConfig:
    """What one ``corrupt`` run evaluates (everything that determines its numbers)."""

    model: str
    data: str | None = None
    split: str = "val"
    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    backend: str = "reference"
    from_disk: str | None = None
    reference_results: str | None = None
    allow_mismatch: bool = False  # use a --reference-results swept with other settings (warns)
    num_images: int | None = None
    subset_seed: int = 0
    base_seed: int = 0
    # inference options (None: the model's run config, see repsep.engine.inference.resolve_settings)
    mode: str | None = None
    crop: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    scales: tuple[float, ...] | None = None
    flip: bool | None = None
    precision: str | None = None  # fp32 / bf16 / fp16; None: bf16 on CUDA, else fp32 (repsep.engine.precision)
    # How the sweep runs; none of these changes its numbers, so none is part of a cell's cache key.
    workers: int = 0
    corrupt_on: str = "auto"
    corrupt_batch: int = 8
    cache_gb: float = 8.0
    scan: str = "full"


def check_options(cfg: SweepConfig) -> None:
    """UserError naming the first option of ``cfg`` out of range (before anything is loaded)."""
    if cfg.corrupt_on not in CORRUPT_ON:
        raise UserError(f"--corrupt-on {cfg.corrupt_on!r}: choose from: {', '.join(CORRUPT_ON)}")
    if cfg.scan not in SCAN:
        raise UserError(f"--scan {cfg.scan!r}: choose from: {', '.join(SCAN)}")
    check_precision(cfg.precision)
    if not 1 <= cfg.corrupt_batch <= MAX_CORRUPT_BATCH:
        raise UserError(f"--corrupt-batch {cfg.corrupt_batch}: must be between 1 and {MAX_CORRUPT_BATCH}")
    if not (math.isfinite(cfg.cache_gb) and cfg.cache_gb >= 0):
        raise UserError(f"--cache-gb {cfg.cache_gb}: must be a finite number of GiB, 0 or more")
    if not 0 <= cfg.workers <= MAX_WORKERS:
        raise UserError(f"--workers {cfg.workers}: must be between 0 and {MAX_WORKERS}")
    if cfg.num_images is not None and cfg.num_images < 1:
        raise UserError(f"--num-images {cfg.num_images}: must be at least 1")
    for option, value in (("--seed", cfg.base_seed), ("--subset-seed", cfg.subset_seed)):
        if not 0 <= value <= MAX_SEED:
            raise UserError(f"{option} {value}: must be between 0 and 2**63 - 1")
    parse_override(os.environ.get(THREADS_ENV))  # REPSEP_CORRUPT_THREADS: a count or 'torch'


def is_batched(backend: CorruptionBackend) -> bool:
    """Whether ``backend`` corrupts a batch at once (it overrides the per-image loop of ``corrupt_batch``)."""
    return type(backend).corrupt_batch is not CorruptionBackend.corrupt_batch


class Sweep:
    """The per-cell plan of one run: which backend corrupts a cell, on which path, and its dataset.

    Args:
        device: the model's device (where the ``model`` path corrupts).
        indices: the evaluated images of ``base`` (all when None).
        tree: with ``--from-disk``, the materialized tree's owned folder and its ``settings.json``.
    """

    def __init__(self, cfg: SweepConfig, base, device: torch.device | str = "cpu",
                 indices: Sequence[int] | None = None, tree: tuple[Any, dict[str, Any]] | None = None) -> None:
        check_options(cfg)
        self.cfg = cfg
        self.base = base
        self.indices = list(range(len(base))) if indices is None else list(indices)
        self.tree = tree
        self.device = torch.device(device)
        self.backends: dict[str, CorruptionBackend] = {}
        if cfg.from_disk is None:
            self.backends[cfg.backend] = get_backend(cfg.backend)
        batched = cfg.from_disk is None and is_batched(self.backends[cfg.backend])
        if cfg.corrupt_on == "model" and not batched:
            raise UserError(f"--corrupt-on model: needs a batched backend (--backend torch) and no --from-disk; "
                            f"got --backend {cfg.backend}" + (" --from-disk" if cfg.from_disk else ""))
        # resolved: the path of the cells a batched backend produces (the others always run in workers)
        self.corrupt_on = "model" if batched and cfg.corrupt_on != "workers" else "workers"
        # corruption threads in this process (workers take 1 each): corruptions.threads, decided once per sweep
        where = "device" if self.corrupt_on == "model" and self.device.type != "cpu" else "process"
        self.threads, self.threads_reason = plan_threads(where)

    def backend(self, cell: tuple[str, int]) -> CorruptionBackend:
        """The backend that corrupts ``cell`` (the reference backend for a corruption the chosen one has no port of)."""
        backend = backend_for(self.backends[self.cfg.backend], cell[0])
        return self.backends.setdefault(backend.name, backend)

    def on_model(self, cell: tuple[str, int]) -> bool:
        """Whether ``cell`` runs the device path (clean does whenever the run's batched cells do)."""
        return self.corrupt_on == "model" and (cell == CLEAN or is_batched(self.backend(cell)))

    def used(self, cell: tuple[str, int]) -> str:
        """What really corrupted ``cell``: ``reference``, ``torch`` or ``torch:cuda`` (a cell corrupted on a device
        other than the CPU: the torch backend's random draws and float arithmetic there give other pixels), for a
        cell read from disk the backend that wrote the tree; clean is ``clean``."""
        if cell == CLEAN:
            return "clean"
        if self.cfg.from_disk is not None:
            return str(self.tree[1].get("backend_per_corruption", {}).get(cell[0], "unknown"))
        name = self.backend(cell).name
        return f"{name}:{self.device.type}" if self.on_model(cell) and self.device.type != "cpu" else name

    def source(self, cell: tuple[str, int]) -> str:
        """:meth:`used`, as ``disk:<backend>`` for a cell read from a materialized tree."""
        used = self.used(cell)
        return f"disk:{used}" if self.cfg.from_disk is not None and cell != CLEAN else used

    def dataset(self, cell: tuple[str, int], transform) -> DatasetView:
        corruption, severity = cell
        if cell == CLEAN:
            ds = DatasetView(self.base, self.indices)
        elif self.cfg.from_disk is not None:
            ds = FromDiskCorrupted(self.base, self.tree[0], corruption, severity, self.indices)
        else:
            ds = CorruptedDataset(self.base, corruption, severity, self.backend(cell), self.cfg.base_seed,
                                  self.indices, threads=self.threads)
        ds.transform = transform
        return ds


def sweep_settings(cfg: SweepConfig, sweep: Sweep, *, model_sha: str, spec: str, fingerprint: str,
                   ids: Sequence[str], inference: dict[str, Any]) -> dict[str, Any]:
    """The ``settings`` block of ``robustness.json`` (the comparability contract of eval / corrupt / analyze)."""
    whole = len(ids) == len(sweep.base)
    return {
        "model_sha256": model_sha, "dataset": spec, "dataset_fingerprint": fingerprint, "split": cfg.split,
        "image_ids_sha256": ids_sha256(ids), "num_images": len(ids), "subset_seed": None if whole else cfg.subset_seed,
        "inference": {"mode": inference["mode"], "crop": as_int_list(inference["crop"]),
                      "stride": as_int_list(inference["stride"]),
                      "scales": [float(s) for s in inference["scales"]], "flip": bool(inference["flip"])},
        "precision": inference["precision"], "base_seed": cfg.base_seed, "severities": list(cfg.severities),
        "corruptions": list(cfg.corruptions), "backend": cfg.backend,
        "cell_backends": {f"{c}/{s}": sweep.used((c, s)) for c in cfg.corruptions for s in cfg.severities},
    }


def as_int_list(pair) -> list[int] | None:
    """``(h, w)`` as a JSON-ready list of ints (None stays None)."""
    return None if pair is None else [int(v) for v in pair]
