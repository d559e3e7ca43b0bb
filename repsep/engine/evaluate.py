"""The ``eval`` command's library side: evaluate a model export on a dataset split and write the result folder.

Output folder (an owned folder of kind ``eval``, see :mod:`repsep.ownership`): ``metrics.json`` (full precision,
with the ``settings`` block that makes results comparable), ``per_class.csv``, ``metrics.md`` (the table people
read), ``per_image.npz`` (per-image areas for bootstrap), ``manifest.json``; while it runs, ``partial/`` keeps the
per-image results of finished chunks so a rerun continues (:mod:`repsep.engine.eval_store`). With ``save_pred``
also colourised predictions ``<id>.png`` in the dataset palette and error maps ``<id>_error.png`` (black = ignored,
grey = correct, red = wrong) in a folder of kind ``predictions``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repsep.engine import distributed as dist
from repsep.errors import UserError

CHUNK_IMAGES = 50
"""Images per saved chunk of per-image results (a rerun after a failure loses at most this many minus one)."""
SCAN_MODES = ("full", "headers")


def settings_block(*, model_sha256: str, dataset, indices: list[int], subset_seed: int | None,
                   inference: dict[str, Any]) -> dict[str, Any]:
    """The ``settings`` block of COMMON contract (what decides whether two results may be compared)."""
    import hashlib

    ids = sorted(dataset.ids[i] for i in indices)

    def plain(v):
        return None if v is None else [int(x) for x in v]

    return {"model_sha256": model_sha256, "dataset": dataset.spec, "dataset_fingerprint": dataset.fingerprint(),
            "split": dataset.split, "image_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
            "num_images": len(indices), "subset_seed": subset_seed,
            "inference": {"mode": inference["mode"], "crop": plain(inference["crop"]),
                          "stride": plain(inference["stride"]), "scales": [float(s) for s in inference["scales"]],
                          "flip": bool(inference["flip"])},
            "precision": inference.get("precision", "fp32")}


def _dataset_root(spec: str) -> list[Path]:
    from repsep.data import spec_root

    path = spec_root(spec)
    return [Path(path)] if path else []


def choose_images(dataset, num_images: int | None, seed: int) -> tuple[list[int], int | None, str | None]:
    """(sorted indices, subset seed or None for the whole split, a note when ``num_images`` exceeds the split)."""
    from repsep.data.subset import subset_indices

    if num_images is not None and num_images < 1:
        raise UserError(f"--num-images {num_images}: must be at least 1")
    if not 0 <= seed < 2**63:
        raise UserError(f"--subset-seed {seed}: must be between 0 and 2^63-1")
    total = len(dataset)
    note = None
    if num_images is not None and num_images > total:
        note = (f"note: --num-images {num_images} is more than the {total} images of {dataset.spec} "
                f"[{dataset.split}]; evaluating all {total}")
    if num_images is None or num_images >= total:
        return list(range(total)), None, note
    return subset_indices(dataset, num_images, seed), seed, note


def _claim(path: Path, kind: str, *, overwrite: bool, inputs: list[Path], what: str):
    """:meth:`OwnedFolder.claim` (nothing created yet) with OS errors on the path itself (a name too long, a
    loop of links) as one error line."""
    from repsep.ownership import OwnedFolder

    try:
        return OwnedFolder.claim(path, kind, overwrite=overwrite, inputs=inputs, what=what, create=False)
    except OSError as e:
        raise UserError(f"{what} {path}: cannot use this path ({e.strerror or e})") from None


def evaluate_checkpoint(model_path: str | Path, out: str | Path, *, data: str | None = None, split: str = "val",
                        mode: str | None = None, crop: tuple[int, int] | None = None,
                        stride: tuple[int, int] | None = None, scales: tuple[float, ...] | None = None,
                        flip: bool | None = None, save_pred: str | Path | None = None, num_workers: int = 2,
                        overwrite: bool = False, progress: bool | None = None, num_images: int | None = None,
                        subset_seed: int = 0, scan: str = "full", precision: str | None = None) -> dict[str, Any]:
    """Evaluate ``model_path`` (a ``model_final.pt``) on ``data`` (default: the dataset it was trained on).

    Inference settings left as None are resolved by :func:`repsep.engine.inference.resolve_settings` (the run's
    ``eval`` config; slide windows default to the training crop). ``num_images`` takes a seeded subset stratified
    by city / scene folder. ``precision`` (fp32 / bf16 / fp16; None: bf16 on CUDA, else fp32) is the model
    forward's autocast precision (:mod:`repsep.engine.precision`). Every input is checked before work starts
    (``scan``: ``full`` decodes every label, ``headers`` reads file headers only). ``out`` follows the ownership
    rule: a finished result is replaced only with ``overwrite`` (built beside it and swapped in); an unfinished one
    is continued from its saved chunks.
    Runs under torchrun too (images sharded across ranks, rank 0 writes). Returns the ``metrics.json`` dict.
    """
    from repsep.data import open_dataset
    from repsep.data.scan import scan_split
    from repsep.data.transforms import EvalTransform
    from repsep.engine.checkpoint import load_model
    from repsep.engine.inference import resolve_settings
    from repsep.engine.precision import check_precision
    from repsep.manifest import sha256_file

    if scan not in SCAN_MODES:
        raise UserError(f"--scan {scan}: choose one of {', '.join(SCAN_MODES)}")
    check_precision(precision)
    out = Path(out)
    device = dist.init_from_env()
    loaded = load_model(model_path, map_location=device)
    inference = resolve_settings(loaded.train_config, mode=mode, crop=crop, stride=stride, scales=scales, flip=flip,
                                 precision=precision, device=device)
    spec = data or loaded.dataset_spec
    dataset = open_dataset(spec, split, transform=EvalTransform(scale=inference["scale"]))
    table = dataset.class_table
    if table.num_classes != loaded.class_table.num_classes:
        raise UserError(f"{model_path}: the model predicts {loaded.class_table.num_classes} classes "
                        f"({loaded.class_table.name}) but dataset {spec!r} has {table.num_classes} ({table.name})")
    indices, seed, note = choose_images(dataset, num_images, subset_seed)
    inputs = [Path(model_path), *_dataset_root(spec)]
    target = _claim(out, "eval", overwrite=overwrite, inputs=inputs, what="--out")
    preds = None
    if save_pred is not None:
        preds = _claim(Path(save_pred), "predictions", overwrite=overwrite, inputs=[*inputs, out], what="--save-pred")
    scan_split(dataset, indices=indices, full=scan == "full", progress=progress if dist.is_main() else False)
    settings = settings_block(model_sha256=sha256_file(model_path), dataset=dataset, indices=indices,
                              subset_seed=seed, inference=inference)
    from repsep.engine.eval_run import run_evaluation

    result = run_evaluation(loaded, dataset, indices, settings, inference, target=target, preds=preds,
                            overwrite=overwrite, device=device, num_workers=num_workers, progress=progress,
                            note=note, model_path=Path(model_path), chunk_images=CHUNK_IMAGES)
    dist.barrier()
    return result
