"""The robustness sweep behind ``repsep-bench corrupt``: clean + every (corruption, severity) cell of a model.

Each cell is one pass over a corrupted view of the dataset (on the fly with a backend, or read from a materialized
tree), on one of two paths (``corrupt_on``): ``workers`` runs :func:`repsep.engine.inference.evaluate_dataset`,
which corrupts image by image in the DataLoader workers; ``model`` (:mod:`corruptions.device_sweep`) decodes the
clean images once per sweep and corrupts them in batches on the model's device, for corruptions a batched backend
(``torch``) produces. Under ``torchrun`` ranks shard the images and the confusion matrices are all-reduced; rank 0
writes. A finished cell's confusion matrix and per-image areas are saved atomically under ``OUT/cells/`` and reused
when the sweep is run again (whatever its ``corrupt_on`` on CPU; on a GPU the torch backend's pixels depend on the
device, see :meth:`Sweep.source`), so an interrupted sweep, rerun, gives the same results as an uninterrupted one.

The output folder (default ``<model folder>/corrupt``) is an owned folder of kind ``corrupt``
(:mod:`repsep.ownership`): a rerun with the same settings reuses its cells; cells made with other settings (another
model, dataset, image subset, seed, backend, precision or inference setting) are refused naming the differing
field, unless ``overwrite``: then the whole result is rebuilt beside the old one and swapped in when it succeeded.
The inputs are checked before any cell is computed (:func:`repsep.data.scan.scan_split` over the evaluated images,
at least 32x32 pixels where images are corrupted).

Outputs: ``robustness.json`` (full precision, with the ``settings`` block that comparability checks read),
``robustness.csv`` (one row per cell), ``robustness.md`` (the table that is printed), ``per_image.npz`` (with its
settings as the one-element JSON string array ``settings``), ``manifest.json``, ``cells/``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from corruptions.backends import CorruptionBackend, backend_for, get_backend
from corruptions.cells import (
    CLEAN,
    cell_key,
    cell_name,
    discard_when_nothing_done,
    load_cell,
    mismatch,
    plan,
    save_cell,
)
from corruptions.dataset import CorruptedDataset, DatasetView, FromDiskCorrupted, dataset_root
from corruptions.materialize import ids_sha256
from corruptions.metrics import check_reference, load_reference, robustness_summary
from corruptions.outputs import format_table, write_outputs
from corruptions.threads import ENV as THREADS_ENV
from corruptions.threads import parse_override
from corruptions.threads import plan as plan_threads
from repsep.engine import nodes
from repsep.engine.precision import check_precision
from repsep.errors import UserError

if TYPE_CHECKING:
    from corruptions.module_model import ModuleModel

__all__ = ["SweepConfig", "Sweep", "check_options", "format_table", "run_sweep", "sweep_settings"]

KIND = "corrupt"
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
        "inference": {"mode": inference["mode"], "crop": _list(inference["crop"]), "stride": _list(inference["stride"]),
                      "scales": [float(s) for s in inference["scales"]], "flip": bool(inference["flip"])},
        "precision": inference["precision"], "base_seed": cfg.base_seed, "severities": list(cfg.severities),
        "corruptions": list(cfg.corruptions), "backend": cfg.backend,
        "cell_backends": {f"{c}/{s}": sweep.used((c, s)) for c in cfg.corruptions for s in cfg.severities},
    }


def _list(pair) -> list[int] | None:
    return None if pair is None else [int(v) for v in pair]


def _say(message: str) -> None:
    print(message, flush=True)


def _prepare(cfg: SweepConfig, out: Path, device: torch.device, progress: bool | None,
             log: Callable[[str], None], module: ModuleModel | None) -> tuple:
    """Load and check every input of the sweep (on each rank): the model, dataset (scanned), image subset,
    ``--from-disk`` tree and ``--reference-results`` (rank 0); the settings block and each cell's key."""
    from corruptions.backends.reference import MIN_SIDE
    from corruptions.materialize import check_tree, open_tree
    from repsep.data import open_dataset
    from repsep.data.scan import scan_split
    from repsep.data.subset import subset_indices
    from repsep.engine import distributed as dist
    from repsep.engine.checkpoint import load_model
    from repsep.engine.inference import resolve_settings
    from repsep.manifest import sha256_file

    main = dist.is_main()
    reference = load_reference(cfg.reference_results) if main and cfg.reference_results else None
    if module is None:
        loaded = load_model(cfg.model, map_location=device)
        net, table, train_config, norm = loaded.model, loaded.class_table, loaded.train_config, None
        model_sha, spec = sha256_file(cfg.model), cfg.data or loaded.dataset_spec
    else:
        if cfg.data is None:
            raise UserError("data: a dataset spec is needed for a model given as a torch module")
        net, table, train_config = module.module.to(device), module.class_table, module.train_config
        model_sha, spec, norm = module.sha256, cfg.data, (module.mean, module.std)
    base = open_dataset(spec, cfg.split)
    if module is not None:
        module.check_classes(base.class_table, spec)
    if base.class_table.num_classes != table.num_classes:
        raise UserError(f"--data {spec}: {base.class_table.num_classes} classes, but the model {cfg.model} predicts "
                        f"{table.num_classes} ({table.name})")
    inference = resolve_settings(train_config, mode=cfg.mode, crop=cfg.crop, stride=cfg.stride,
                                 scales=cfg.scales, flip=cfg.flip, precision=cfg.precision, device=device)
    indices = subset_indices(base, cfg.num_images, cfg.subset_seed)
    if main and cfg.num_images is not None and cfg.num_images > len(base):
        log(f"--num-images {cfg.num_images}: {spec} {cfg.split} has only {len(base)} images; evaluating all "
            f"{len(base)}")
    ids = [base.image_id(i) for i in indices]
    cells = [CLEAN] + [(c, s) for c in cfg.corruptions for s in cfg.severities]
    tree = None
    if cfg.from_disk is not None:
        tree = open_tree(cfg.from_disk)
        check_tree(cfg.from_disk, tree[1], base, ids, cfg.base_seed, cells[1:])
    sweep = Sweep(cfg, base, device, indices, tree)
    scan_split(base, indices=indices, full=cfg.scan == "full",
               min_size=None if cfg.from_disk is not None else (MIN_SIDE, MIN_SIDE), progress=progress)
    fingerprint = base.fingerprint()
    settings = sweep_settings(cfg, sweep, model_sha=model_sha, spec=spec, fingerprint=fingerprint, ids=ids,
                              inference=inference)
    keys = {cell: cell_key(settings, cell, sweep.source(cell)) for cell in cells}
    if reference is not None:  # refuse a reference swept with other settings before any work
        for line in check_reference(reference, settings, f"this sweep ({out})", allow_mismatch=cfg.allow_mismatch):
            print(f"warning: --reference-results: {line}", file=sys.stderr)
    inputs = [p for p in (cfg.model if module is None else None, cfg.from_disk, cfg.reference_results)
              if p is not None] + [dataset_root(base)]
    return reference, net, model_sha, spec, base, inference, ids, cells, sweep, settings, keys, inputs, norm


def run_sweep(cfg: SweepConfig, out: str | Path, *, overwrite: bool = False, progress: bool | None = None,
              log: Callable[[str], None] = _say, module: ModuleModel | None = None) -> dict[str, Any] | None:
    """Evaluate clean + every cell of ``cfg``, write the outputs into ``out`` (rank 0) and return the result.

    The model is the export at ``cfg.model``, or ``module`` when given (an in-memory model built by
    :func:`corruptions.module_model.module_model`; ``cfg.model`` is then only its label, ``cfg.data`` is required, and
    the settings block's ``model_sha256`` is the module's identity, see :func:`corruptions.module_model.module_sha256`).

    Everything is checked before the first cell: options, model, dataset (scanned), the output folder (owned,
    cells fitting these settings unless ``overwrite``) and a ``--from-disk`` tree. Returns the
    ``robustness.json`` dict on rank 0 and None on other ranks.
    """
    from repsep.engine import distributed as dist
    from repsep.ownership import OwnedFolder, remove_stale_temporaries, replace_result

    out = Path(out)
    if not cfg.corruptions:
        raise UserError("--corruptions: nothing to evaluate")
    check_options(cfg)
    device = dist.init_from_env()
    main = dist.is_main()
    with nodes.together():  # an input one node cannot read stops every rank with its error line, none waits
        (reference, net, model_sha, spec, base, inference, ids, cells, sweep, settings, keys, inputs,
         norm) = _prepare(cfg, out, device, progress, log, module)
    nodes.check_same_inputs(settings, "model, dataset and --from-disk tree")  # the same cells on every node

    folder = None
    context: Any = nullcontext(None)
    problem = None
    if main:  # rank 0 owns the output folder and decides which cells are done
        try:
            remove_stale_temporaries(out, KIND)
            folder = OwnedFolder.claim(out, KIND, overwrite=overwrite, resume=True, inputs=inputs, create=False)
            if overwrite and folder.files:
                context = replace_result(out, KIND, overwrite=True, inputs=inputs)
            else:
                for cell in cells:
                    if (problem := mismatch(folder, cell, keys[cell])) is not None:
                        break
                else:
                    fresh = not out.exists()
                    folder.create()
                    folder.unfinish()
                    context = discard_when_nothing_done(folder, fresh)
        except UserError as e:
            problem = str(e)
    problem = dist.broadcast_object(problem)  # every rank stops with rank 0's refusal, none waits for it
    if problem is not None:
        raise UserError(problem)
    with context as staging:
        folder = staging if isinstance(staging, OwnedFolder) else folder
        if main:
            nodes.remove_probes(folder)  # a killed multi-node run's leftover
        nodes.check_shared_folder(folder, out)  # every node must see the cells rank 0 writes (resume)
        done = dist.broadcast_object(plan(folder, keys) if main else None)
        params = sum(p.numel() for p in net.parameters())
        if main:
            log(f"corrupt: device {device} x{dist.world_size()}, {len(ids)} images ({spec} {cfg.split}"
                + (f", subset seed {cfg.subset_seed}" if settings["subset_seed"] is not None else "") + "), "
                f"{len(cells)} cells ({len(done)} reused), backend {cfg.backend}"
                + (f" from disk {cfg.from_disk}" if cfg.from_disk else "") + f", corrupt-on {sweep.corrupt_on}, "
                f"batch {cfg.corrupt_batch}, corruption threads {sweep.threads or 'unchanged'} "
                f"({sweep.threads_reason}), inference {_describe(settings['inference'])}, precision "
                f"{settings['precision']}, weights {cfg.model} "
                f"(sha256 {model_sha[:12]}, {params / 1e6:.2f} M params) -> {out}")
        _evaluate_cells(cfg, sweep, net, inference, cells, done, folder, keys, device, progress, norm)
        if not main:
            return None
        saved = {cell: load_cell(folder, cell, keys[cell]) for cell in cells}
        result, scores = _result(cfg, sweep, settings, inference, saved, reference, spec)
        model_inputs = {"model": str(cfg.model), "model_sha256": model_sha, "dataset": spec, "split": cfg.split,
                        "settings": result["settings"]}
        if module is not None:
            model_inputs["module"] = module.describe()
        write_outputs(folder, result, scores, saved, config=asdict(cfg), inputs=model_inputs,
                      base_seed=cfg.base_seed)
        folder.finish()
    return result


def _describe(inference: dict[str, Any]) -> str:
    text = inference["mode"]
    if inference["mode"] == "slide":
        text += f" {inference['crop'][0]}x{inference['crop'][1]}/{inference['stride'][0]}x{inference['stride'][1]}"
    if inference["scales"] != [1.0]:
        text += f", scales {','.join(map(str, inference['scales']))}"
    return text + (", flip" if inference["flip"] else "")


def _evaluate_cells(cfg: SweepConfig, sweep: Sweep, model, inference: dict[str, Any], cells, done, folder, keys,
                    device, progress, norm: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
    """Compute every cell not in ``done``; rank 0 saves each as soon as it is finished. ``norm``: the model's
    (mean, std) in 0-255 RGB (None: ImageNet's, as every repsep-bench export takes)."""
    from corruptions.device_sweep import CleanShard, evaluate_cell
    from repsep.data.transforms import EvalTransform
    from repsep.engine import distributed as dist
    from repsep.engine.inference import evaluate_dataset
    from repsep.metrics import SegEvaluator
    from repsep.progress import bars_enabled, progress_bar

    main = dist.is_main()
    shown = main and bars_enabled(progress)  # engine loops get a plain bool: bars only on a terminal
    table = sweep.base.class_table
    transform = EvalTransform(scale=inference["scale"]) if norm is None else EvalTransform(
        scale=inference["scale"], mean=tuple(norm[0]), std=tuple(norm[1]))
    predict_kwargs = {k: inference[k] for k in ("mode", "crop", "stride", "scales", "flip", "precision")}
    evaluator = SegEvaluator(table.num_classes, table.ignore_index, table.classes)
    clean = CleanShard(DatasetView(sweep.base, sweep.indices), device, cfg.workers, int(cfg.cache_gb * 2**30))
    bar = progress_bar(cells, wanted=progress, desc="cells", unit="cell")
    for cell in bar:
        bar.set_postfix_str(cell_name(cell))
        if cell in done:
            continue
        if sweep.on_model(cell):
            evaluate_cell(model, clean, evaluator, transform, device=device, batch_size=cfg.corrupt_batch,
                          backend=None if cell == CLEAN else sweep.backend(cell), corruption=cell[0],
                          severity=cell[1], base_seed=cfg.base_seed, progress=shown, threads=sweep.threads,
                          **predict_kwargs)
        else:
            evaluate_dataset(model, sweep.dataset(cell, transform), evaluator, device=device,
                             num_workers=cfg.workers, progress=shown, **predict_kwargs)
        if main:
            save_cell(folder, cell, keys[cell], evaluator)
        dist.barrier()


def _result(cfg: SweepConfig, sweep: Sweep, settings: dict[str, Any], inference: dict[str, Any], saved: dict,
            reference, spec: str) -> tuple[dict[str, Any], dict]:
    """The ``robustness.json`` dict and the metrics of every cell."""
    from repsep.metrics import segmentation_metrics

    scores = {cell: segmentation_metrics(saved[cell]["conf"]) for cell in saved}
    grid = {c: {s: scores[(c, s)]["mIoU"] for s in cfg.severities} for c in cfg.corruptions}
    result = robustness_summary(scores[CLEAN]["mIoU"], grid, cfg.corruptions, cfg.severities, reference)
    result.update(
        model=str(cfg.model), dataset=spec, split=cfg.split, num_images=len(saved[CLEAN]["ids"]),
        corruptions=list(cfg.corruptions), severities=list(cfg.severities), base_seed=cfg.base_seed,
        clean_metrics={k: scores[CLEAN][k] for k in ("mIoU", "aAcc", "mAcc")},
        inference={**settings["inference"], "scale": _list(inference["scale"])},
        backend_per_cell={c: {s: sweep.source((c, s)) for s in cfg.severities} for c in cfg.corruptions},
        corrupt_on=sweep.corrupt_on, settings=settings,
    )
    return result, scores
