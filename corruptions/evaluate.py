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

import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

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
from corruptions.dataset import DatasetView, dataset_root
from corruptions.metrics import check_reference, load_reference, robustness_summary
from corruptions.outputs import format_table, write_outputs
from corruptions.sweep_config import (
    MAX_SEED,
    MAX_WORKERS,
    Sweep,
    SweepConfig,
    as_int_list,
    check_options,
    sweep_settings,
)
from repsep.engine import nodes
from repsep.errors import UserError

if TYPE_CHECKING:
    from corruptions.module_model import ModuleModel

__all__ = ["MAX_SEED", "MAX_WORKERS", "Sweep", "SweepConfig", "check_options", "format_table", "run_sweep",
           "sweep_settings"]

KIND = "corrupt"


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
        inference={**settings["inference"], "scale": as_int_list(inference["scale"])},
        backend_per_cell={c: {s: sweep.source((c, s)) for s in cfg.severities} for c in cfg.corruptions},
        corrupt_on=sweep.corrupt_on, settings=settings,
    )
    return result, scores
