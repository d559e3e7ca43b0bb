"""The robustness sweep behind ``repsep-bench corrupt``: clean + every (corruption, severity) cell of a model.

Each cell is one pass over a corrupted view of the dataset (on the fly with a backend, or read from a materialized
tree), on one of two paths (``corrupt_on``): ``workers`` runs :func:`repsep.engine.inference.evaluate_dataset`,
which corrupts image by image in the DataLoader workers; ``model`` (:mod:`corruptions.device_sweep`) decodes the
clean images once per sweep and corrupts them in batches on the model's device, for corruptions a batched backend
(``torch``) produces. Under ``torchrun`` ranks shard the images and the confusion matrices are all-reduced; rank 0
writes. A finished cell's confusion matrix and per-image areas are saved atomically under ``OUT/cells/`` and reused
when the sweep is run again (whatever its ``corrupt_on`` on CPU; on a GPU the torch backend's pixels depend on the
device, see :meth:`Sweep.source`), so an interrupted sweep, rerun, gives the same results as an uninterrupted one.

Outputs (``--out``): ``robustness.json`` (full precision), ``robustness.csv`` (one row per cell), ``robustness.md``
(the table that is printed), ``per_image.npz``, ``manifest.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from corruptions.backends import CorruptionBackend, backend_for, get_backend
from corruptions.dataset import CorruptedDataset, DatasetView, FromDiskCorrupted
from corruptions.metrics import check_reference, load_reference, robustness_summary
from corruptions.suite import group_of
from repsep.errors import UserError
from repsep.io import atomic_save, atomic_write_json, atomic_write_npz, atomic_write_text

CLEAN = ("clean", 0)
CORRUPT_ON = ("auto", "model", "workers")
AREAS = ("intersect", "union", "pred_area", "label_area")


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
    base_seed: int = 0
    workers: int = 0
    # How the sweep runs; none of these changes its numbers, so none is part of a cell's cache key.
    corrupt_on: str = "auto"
    corrupt_batch: int = 8
    cache_gb: float = 8.0


def cell_name(cell: tuple[str, int]) -> str:
    return "clean" if cell == CLEAN else f"{cell[0]}-{cell[1]}"


def _cell_key(cfg: SweepConfig, model_sha: str, spec: str, cell: tuple[str, int], source: str) -> dict[str, Any]:
    """What a cached cell must match to be reused (not the worker count, world size, ``corrupt_on``, batch or cache
    size: they do not change it; ``source`` names the device where that does, e.g. ``torch:cuda``)."""
    return {"model_sha256": model_sha, "dataset": spec, "split": cfg.split, "num_images": cfg.num_images,
            "base_seed": cfg.base_seed, "cell": cell_name(cell), "source": source}


def _load_cell(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """A saved cell if it exists; UserError if it was computed for a different run."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        saved_key = json.loads(saved["key"])
    except Exception as e:  # a corrupt cache file is bad input, not a crash
        raise UserError(f"{path}: unreadable saved cell ({e}); delete it to recompute") from None
    if saved_key != key:
        diff = sorted(k for k in key if saved_key.get(k) != key[k])
        raise UserError(f"{path}: saved by a different run (differs in {', '.join(diff)}); use another --out "
                        f"or delete {path.parent}")
    return saved


def _save_cell(path: Path, key: dict[str, Any], evaluator) -> dict[str, Any]:
    per_image = evaluator.per_image()
    cell = {"key": json.dumps(key, sort_keys=True), "conf": evaluator.conf.clone(),
            "ids": [str(i) for i in per_image["ids"]],
            "areas": torch.from_numpy(np.stack([per_image[a] for a in AREAS], axis=1))}
    atomic_save(path, lambda f: torch.save(cell, f))
    return cell


def eval_settings(train_config: dict[str, Any]) -> dict[str, Any]:
    """The model's own validation inference settings (the ``eval`` section of its training config): ``mode``,
    ``crop``, ``stride``, ``scales``, ``flip`` for :func:`~repsep.engine.inference.predict` and the resize ``scale``.
    """
    e = train_config.get("eval") or {}

    def pair(v):
        return None if v is None else tuple(int(x) for x in v)

    return {"mode": e.get("mode", "whole"), "crop": pair(e.get("crop")), "stride": pair(e.get("stride")),
            "scale": pair(e.get("scale")), "scales": tuple(float(x) for x in e.get("scales", (1.0,))),
            "flip": bool(e.get("flip", False))}


def is_batched(backend: CorruptionBackend) -> bool:
    """Whether ``backend`` corrupts a batch at once (it overrides the per-image loop of ``corrupt_batch``)."""
    return type(backend).corrupt_batch is not CorruptionBackend.corrupt_batch


class Sweep:
    """The per-cell plan of one run: which backend corrupts a cell, on which path, and its dataset.

    Args:
        device: the model's device (where the ``model`` path corrupts).
    """

    def __init__(self, cfg: SweepConfig, base, device: torch.device | str = "cpu") -> None:
        if cfg.corrupt_on not in CORRUPT_ON:
            raise UserError(f"--corrupt-on {cfg.corrupt_on!r}: choose from: {', '.join(CORRUPT_ON)}")
        if cfg.corrupt_batch < 1 or cfg.cache_gb < 0:
            raise UserError(f"--corrupt-batch {cfg.corrupt_batch} / --cache-gb {cfg.cache_gb}: must be >= 1 / >= 0")
        self.cfg = cfg
        self.base = base
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

    def backend(self, cell: tuple[str, int]) -> CorruptionBackend:
        """The backend that corrupts ``cell`` (glass_blur/spatter have no torch port: the reference backend)."""
        backend = backend_for(self.backends[self.cfg.backend], cell[0])
        return self.backends.setdefault(backend.name, backend)

    def on_model(self, cell: tuple[str, int]) -> bool:
        """Whether ``cell`` runs the device path (clean does whenever the run's batched cells do)."""
        return self.corrupt_on == "model" and (cell == CLEAN or is_batched(self.backend(cell)))

    def source(self, cell: tuple[str, int]) -> str:
        """``reference``/``torch`` (the backend that corrupts this cell) or ``disk:<DIR>``; clean is ``clean``.

        A cell corrupted on a device other than the CPU is ``<backend>:<device type>`` (e.g. ``torch:cuda``): the
        torch backend's random draws and float arithmetic there give other pixels than on the CPU.
        """
        if cell == CLEAN:
            return "clean"
        if self.cfg.from_disk is not None:
            return f"disk:{Path(self.cfg.from_disk).resolve()}"
        name = self.backend(cell).name
        return f"{name}:{self.device.type}" if self.on_model(cell) and self.device.type != "cpu" else name

    def dataset(self, cell: tuple[str, int], transform) -> DatasetView:
        corruption, severity = cell
        n = self.cfg.num_images
        if cell == CLEAN:
            ds = DatasetView(self.base, n)
        elif self.cfg.from_disk is not None:
            ds = FromDiskCorrupted(self.base, self.cfg.from_disk, corruption, severity, n)
        else:
            ds = CorruptedDataset(self.base, corruption, severity, self.backend(cell), self.cfg.base_seed, n)
        ds.transform = transform
        return ds


def run_sweep(cfg: SweepConfig, out: str | Path, *, progress: bool | None = None) -> dict[str, Any] | None:
    """Evaluate clean + every cell of ``cfg``, write the outputs into ``out`` (rank 0) and return the result.

    Returns the ``robustness.json`` dict on rank 0 and None on other ranks.
    """
    from tqdm import tqdm

    from corruptions.device_sweep import CleanShard, evaluate_cell
    from repsep.data import open_dataset
    from repsep.data.transforms import EvalTransform
    from repsep.engine import distributed as dist
    from repsep.engine.checkpoint import load_model
    from repsep.engine.inference import evaluate_dataset
    from repsep.manifest import build_manifest, sha256_file
    from repsep.metrics import SegEvaluator, segmentation_metrics

    out = Path(out)
    if not cfg.corruptions:
        raise UserError("--corruptions: nothing to evaluate")
    reference = load_reference(cfg.reference_results) if cfg.reference_results else None
    device = dist.init_from_env()
    loaded = load_model(cfg.model, map_location=device)
    model_sha = sha256_file(cfg.model)
    spec = cfg.data or loaded.dataset_spec
    base = open_dataset(spec, cfg.split)
    if base.class_table.num_classes != loaded.class_table.num_classes:
        raise UserError(f"--data {spec}: {base.class_table.num_classes} classes, but the model {cfg.model} predicts "
                        f"{loaded.class_table.num_classes} ({loaded.class_table.name})")
    sweep = Sweep(cfg, base, device)
    settings = eval_settings(loaded.train_config)
    transform = EvalTransform(scale=settings["scale"])
    predict_kwargs = {k: settings[k] for k in ("mode", "crop", "stride", "scales", "flip")}
    cells = [CLEAN] + [(c, s) for c in cfg.corruptions for s in cfg.severities]
    cells_dir = out / "cells"
    keys = {cell: _cell_key(cfg, model_sha, spec, cell, sweep.source(cell)) for cell in cells}
    compared = _reference_settings(cfg, base, sweep, settings)
    if reference is not None:  # refuse a reference swept with other settings before any work
        for line in check_reference(reference, compared, f"this sweep ({out})", allow_mismatch=cfg.allow_mismatch):
            print(f"warning: --reference-results: {line}", file=sys.stderr)
    main = dist.is_main()
    # rank 0 decides which cells are done (and validates them), so every rank skips the same ones
    done = dist.broadcast_object(
        [cell for cell in cells if main and _load_cell(cells_dir / f"{cell_name(cell)}.pt", keys[cell]) is not None])
    evaluator = SegEvaluator(base.class_table.num_classes, base.class_table.ignore_index, base.class_table.classes)
    clean = CleanShard(DatasetView(base, cfg.num_images), device, cfg.workers, int(cfg.cache_gb * 2**30))
    bar = tqdm(cells, desc="cells", unit="cell", disable=(not main) if progress is None else not progress,
               dynamic_ncols=True)
    for cell in bar:
        bar.set_postfix_str(cell_name(cell))
        if cell in done:
            continue
        if sweep.on_model(cell):
            evaluate_cell(loaded.model, clean, evaluator, transform, device=device, batch_size=cfg.corrupt_batch,
                          backend=None if cell == CLEAN else sweep.backend(cell), corruption=cell[0],
                          severity=cell[1], base_seed=cfg.base_seed, progress=progress if main else False,
                          **predict_kwargs)
        else:
            evaluate_dataset(loaded.model, sweep.dataset(cell, transform), evaluator, device=device,
                             num_workers=cfg.workers, progress=progress if main else False, **predict_kwargs)
        if main:
            _save_cell(cells_dir / f"{cell_name(cell)}.pt", keys[cell], evaluator)
        dist.barrier()
    if not main:
        return None

    saved = {cell: _load_cell(cells_dir / f"{cell_name(cell)}.pt", keys[cell]) for cell in cells}
    scores = {cell: segmentation_metrics(saved[cell]["conf"]) for cell in cells}
    grid = {c: {s: scores[(c, s)]["mIoU"] for s in cfg.severities} for c in cfg.corruptions}
    result = robustness_summary(scores[CLEAN]["mIoU"], grid, cfg.corruptions, cfg.severities, reference)
    result.update(
        model=str(cfg.model), dataset=spec, split=cfg.split, num_images=len(saved[CLEAN]["ids"]),
        corruptions=list(cfg.corruptions), severities=list(cfg.severities), base_seed=cfg.base_seed,
        clean_metrics={k: scores[CLEAN][k] for k in ("mIoU", "aAcc", "mAcc")}, inference=settings,
        backend_per_cell={c: {s: sweep.source((c, s)) for s in cfg.severities} for c in cfg.corruptions},
        corrupt_on=sweep.corrupt_on,
    )
    result.setdefault("settings", {"model_sha256": model_sha, "dataset": spec, **compared})  # what a reference needs
    _write_outputs(out, cfg, result, scores, saved, build_manifest(
        "corrupt", seeds={"base_seed": cfg.base_seed}, config=asdict(cfg),
        inputs={"model": str(cfg.model), "model_sha256": model_sha, "dataset": spec, "split": cfg.split}))
    return result


def _reference_settings(cfg: SweepConfig, base: Any, sweep: Sweep, inference: dict[str, Any]) -> dict[str, Any]:
    """The fields of this sweep's settings block that :func:`corruptions.metrics.check_reference` compares."""
    import hashlib

    view = DatasetView(base, cfg.num_images)
    ids = sorted(view.image_id(i) for i in range(len(view)))
    return {"dataset_fingerprint": base.fingerprint(), "split": cfg.split,
            "image_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(), "base_seed": cfg.base_seed,
            "severities": list(cfg.severities), "precision": "fp32",
            "cell_backends": {f"{c}/{s}": sweep.source((c, s)) for c in cfg.corruptions for s in cfg.severities},
            "inference": {k: list(v) if isinstance(v, tuple) else v for k, v in inference.items()
                          if k in ("mode", "crop", "stride", "scales", "flip")}}


def _write_outputs(out: Path, cfg: SweepConfig, result: dict[str, Any], scores: dict, saved: dict,
                   manifest: dict[str, Any]) -> None:
    atomic_write_json(out / "robustness.json", result)
    rows = [["corruption", "group", "severity", "mIoU", "aAcc", "mAcc", "source"]]
    for cell in saved:
        c, s = cell
        rows.append([c, "clean" if cell == CLEAN else group_of(c), s, *(repr(scores[cell][k]) for k in
                     ("mIoU", "aAcc", "mAcc")), "clean" if cell == CLEAN else result["backend_per_cell"][c][s]])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    atomic_write_text(out / "robustness.csv", text.getvalue())
    atomic_write_text(out / "robustness.md", format_table(result, cfg.severities))
    ids = saved[CLEAN]["ids"]
    arrays: dict[str, np.ndarray] = {"ids": np.array(ids, dtype=str)}
    for cell, data in saved.items():
        if data["ids"] != ids:
            raise RuntimeError(f"cell {cell_name(cell)} covers different images than the clean pass")
        prefix = "clean" if cell == CLEAN else f"{cell[0]}/{cell[1]}"
        for k, name in enumerate(AREAS):
            arrays[f"{prefix}/{name}"] = data["areas"][:, k].numpy()
    atomic_write_npz(out / "per_image.npz", arrays)
    atomic_write_json(out / "manifest.json", manifest)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def format_table(result: dict[str, Any], severities: Sequence[int]) -> str:
    """Markdown: one row per corruption (mIoU per severity, mean, CE, rel. CE), then groups and summary lines."""
    with_ce = result.get("CE") is not None
    head = ["corruption", "group", *(f"s{s}" for s in severities), "mean", *(["CE", "rel. CE"] if with_ce else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for c, per_sev in result["cells"].items():
        ce = [_fmt(result["CE"][c]), _fmt(result["rel_CE"][c])] if with_ce else []
        lines.append("| " + " | ".join([c, group_of(c), *(_fmt(per_sev[s]) for s in severities),
                                        _fmt(result["per_corruption"][c]), *ce]) + " |")
    lines.append("")
    lines.append("| group | mean mIoU |\n|---|---:|")
    lines.extend(f"| {g} | {_fmt(v)} |" for g, v in result["per_group"].items())
    lines.append("")
    summary = (f"clean mIoU {_fmt(result['clean'])}, mPC {_fmt(result['mPC'])}, rPC {_fmt(result['rPC'])}%"
               + (f", mCE {_fmt(result['mCE'])}%, relative mCE {_fmt(result['rel_mCE'])}%" if with_ce else ""))
    lines.append(summary + f" ({result['num_images']} images, {result['dataset']} {result['split']})")
    return "\n".join(lines) + "\n"
