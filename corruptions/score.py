"""``repsep-bench score``: robustness tables from prediction PNGs written by any tool.

Prediction layout (it follows the materialized tree's, ``corruptions materialize``): for every evaluated image,
``PRED/clean/<rel>`` (the prediction on the clean image) and ``PRED/<corruption>/<severity>/<rel>`` (on the
materialized corrupted image ``TREE/<corruption>/<severity>/<rel>``), where ``<rel>`` is the image's path relative
to the dataset root with the suffix ``.png`` (e.g. ``leftImg8bit/val/frankfurt/frankfurt_000000_000294_
leftImg8bit.png``). Each prediction is an 8-bit single-channel PNG (mode ``L`` or ``P``) of the label's size,
holding train ids ``0..K-1`` of the dataset's class table, or, with ``label_ids``, Cityscapes label ids mapped by
the official table :data:`repsep.data.labels.LABELID_TO_TRAINID` (ids of the 19 evaluated classes only).

Before anything is scored, every prediction's header is checked (exists, 8-bit single channel, the label's size):
the first bad one is one error line naming it. Values are checked as each file is decoded (once).

The output is the same owned ``corrupt`` folder as ``repsep-bench corrupt`` writes (``robustness.json`` with mPC,
rPC, CE and the ``settings`` block, ``per_image.npz``, ``robustness.md`` / ``.csv``, ``manifest.json``; no cells),
so ``report`` reads it beside other models. Its ``settings``: ``model_sha256`` is the sha256 of the text
``"<relative path>\\t<sha256 of the file's bytes>\\n"`` over every scored prediction file in sorted path order
(the predictions identify the model); ``backend`` is ``"predictions"``; ``base_seed`` and ``cell_backends`` are
the materialized tree's (``from_disk``), else the declared ``base_seed`` / ``backend``; ``inference`` and
``precision`` are as declared (the external tool's; they cannot be checked; default whole image, one scale, no
flip, fp32). The result is computed in one pass (no resume: no model runs) and swapped in when complete.
"""

from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from corruptions.cells import CLEAN
from corruptions.dataset import dataset_root, materialized_relpath
from corruptions.materialize import ids_sha256
from corruptions.metrics import check_reference, load_reference, robustness_summary
from corruptions.outputs import KIND, write_outputs
from corruptions.sweep_config import MAX_SEED, as_int_list
from repsep.errors import UserError

PRED_MODES = ("L", "P")
BACKEND = "predictions"
LAYOUT = "PRED/clean/<rel>.png and PRED/<corruption>/<severity>/<rel>.png (<rel>: the image's path in the dataset)"

@dataclass(frozen=True)
class ScoreConfig:
    """What one ``score`` run reads (``inference`` fields and ``precision`` are the external tool's, declared)."""

    pred: str
    data: str
    split: str = "val"
    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    from_disk: str | None = None
    base_seed: int = 0
    backend: str = "reference"
    reference_results: str | None = None
    allow_mismatch: bool = False
    label_ids: bool = False
    num_images: int | None = None
    subset_seed: int = 0
    mode: str = "whole"
    crop: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    precision: str = "fp32"  # the external tool's (declared, recorded, compared like any other setting)


def prefix(cell: tuple[str, int]) -> str:
    """The cell's folder inside PRED: ``clean`` or ``<corruption>/<severity>``."""
    return "clean" if cell == CLEAN else f"{cell[0]}/{cell[1]}"


def _cell_text(cell: tuple[str, int]) -> str:
    return "clean" if cell == CLEAN else f"{cell[0]} severity {cell[1]}"


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    try:
        if path.stat().st_size == 0:
            raise UserError(f"{path}: empty prediction file (0 bytes)")
        with Image.open(path) as img:
            return img.mode, img.size
    except FileNotFoundError:
        raise UserError(f"{path}: prediction not found (layout: {LAYOUT})") from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a readable image, expected a single-channel prediction PNG") from None
    except OSError as e:
        raise UserError(f"{path}: unreadable prediction ({e.strerror or e})") from None


def check_predictions(pred: Path, base, indices: list[int], cells: list[tuple[str, int]], rels: list[str],
                      progress: bool | None = None) -> None:
    """The cheap whole-tree check before scoring: every prediction exists, is an 8-bit single-channel image and
    has its label's size; UserError (one line) naming the first bad file."""
    from repsep.progress import progress_bar

    for cell in cells:
        folder = pred / prefix(cell)
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder; the predictions for {_cell_text(cell)} are missing "
                            f"(layout: {LAYOUT})")
    sizes = {i: _header(Path(base.labels[i]))[1] for i in indices}
    for cell in progress_bar(cells, wanted=progress, desc="check", unit="cell", leave=False):
        for i, rel in zip(indices, rels, strict=True):
            path = pred / prefix(cell) / rel
            mode, size = _header(path)
            if mode not in PRED_MODES:
                raise UserError(f"{path}: prediction has mode {mode}, expected an 8-bit single-channel PNG (mode L "
                                "or P) of class indices")
            if size != sizes[i]:
                raise UserError(f"{path}: prediction is {size[0]}x{size[1]} (WxH) but the label of "
                                f"{base.image_id(i)} is {sizes[i][0]}x{sizes[i][1]}")


def value_table(table, label_ids: bool) -> tuple[np.ndarray, str]:
    """(uint8 [256] raw value -> train id, 255 where invalid; a description of the valid values)."""
    from repsep.data.labels import LABELID_TO_TRAINID

    if label_ids:
        return np.asarray(LABELID_TO_TRAINID), f"Cityscapes label ids of the {table.num_classes} evaluated classes"
    lut = np.full(256, 255, dtype=np.uint8)
    lut[:table.num_classes] = np.arange(table.num_classes, dtype=np.uint8)
    return lut, f"train ids 0..{table.num_classes - 1} of {table.name}"


def read_prediction(path: Path, lut: np.ndarray, valid: str) -> tuple[np.ndarray, bytes]:
    """(int64 [H, W] train ids, the file's bytes); UserError naming the file on a value outside ``lut``."""
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            raw = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path}: unreadable or truncated prediction ({e})") from None
    ids = lut[raw]
    bad = ids == 255
    if bad.any():
        values = sorted({int(v) for v in np.unique(raw[bad])})
        raise UserError(f"{path}: value{'s' if len(values) > 1 else ''} {', '.join(map(str, values[:5]))} outside "
                        f"the class table (expected {valid})")
    return ids.astype(np.int64), data


def _tree_identity(cfg: ScoreConfig, base, ids: list[str], cells) -> tuple[int, dict[str, str]]:
    """(base seed, backend per corruption) from the materialized tree, or as declared."""
    from corruptions.backends import backend_for, get_backend
    from corruptions.materialize import check_tree, open_tree

    if cfg.from_disk is None:
        backend = get_backend(cfg.backend)
        return cfg.base_seed, {c: backend_for(backend, c).name for c in cfg.corruptions}
    _, settings = open_tree(cfg.from_disk)
    seed = settings.get("base_seed")
    check_tree(cfg.from_disk, settings, base, ids, seed, cells)
    per = settings.get("backend_per_corruption", {})
    return int(seed), {c: str(per.get(c, "unknown")) for c in cfg.corruptions}


def score_predictions(cfg: ScoreConfig, out: str | Path, *, overwrite: bool = False,
                      progress: bool | None = None, log=print) -> dict[str, Any]:
    """Score every cell of ``cfg`` from the prediction PNGs under ``cfg.pred``; write ``out``; return the
    ``robustness.json`` dict (its fields as ``corrupt`` writes them)."""
    from repsep.data import open_dataset
    from repsep.data.base import read_label_png
    from repsep.data.scan import scan_split
    from repsep.data.subset import subset_indices
    from repsep.engine.inference import resolve_settings
    from repsep.metrics import SegEvaluator, segmentation_metrics
    from repsep.ownership import replace_result
    from repsep.progress import progress_bar

    pred, out = Path(cfg.pred), Path(out)
    if not pred.is_dir():
        raise UserError(f"--pred {pred}: {'not a folder' if pred.exists() else 'folder not found'} (expected "
                        f"{LAYOUT})")
    if not cfg.corruptions:
        raise UserError("--corruptions: nothing to score")
    if cfg.num_images is not None and cfg.num_images < 1:
        raise UserError(f"--num-images {cfg.num_images}: must be at least 1")
    for option, value in (("--seed", cfg.base_seed), ("--subset-seed", cfg.subset_seed)):
        if not 0 <= value <= MAX_SEED:
            raise UserError(f"{option} {value}: must be between 0 and 2**63 - 1")
    reference = load_reference(cfg.reference_results) if cfg.reference_results else None
    base = open_dataset(cfg.data, cfg.split)
    table = base.class_table
    if cfg.label_ids and table.name != "cityscapes":
        raise UserError(f"--label-ids: only for Cityscapes' 19 classes; {cfg.data} has {table.name}")
    inference = resolve_settings({}, mode=cfg.mode, crop=cfg.crop, stride=cfg.stride, scales=cfg.scales,
                                 flip=cfg.flip)
    indices = subset_indices(base, cfg.num_images, cfg.subset_seed)
    ids = [base.image_id(i) for i in indices]
    cells = [CLEAN] + [(c, s) for c in cfg.corruptions for s in cfg.severities]
    base_seed, backends = _tree_identity(cfg, base, ids, cells[1:])
    root = dataset_root(base)
    rels = [materialized_relpath(base, i, root).as_posix() for i in indices]
    settings = {
        "model_sha256": None,  # over the prediction files: set once they are decoded
        "dataset": cfg.data, "dataset_fingerprint": base.fingerprint(),
        "split": cfg.split, "image_ids_sha256": ids_sha256(ids), "num_images": len(ids),
        "subset_seed": None if len(ids) == len(base) else cfg.subset_seed,
        "inference": {"mode": inference["mode"], "crop": as_int_list(inference["crop"]),
                      "stride": as_int_list(inference["stride"]), "scales": [float(s) for s in inference["scales"]],
                      "flip": bool(inference["flip"])},
        "precision": cfg.precision, "base_seed": base_seed, "severities": list(cfg.severities),
        "corruptions": list(cfg.corruptions), "backend": BACKEND,
        "cell_backends": {f"{c}/{s}": backends[c] for c in cfg.corruptions for s in cfg.severities},
    }
    if reference is not None:  # before the scans and the decoding: a wrong reference fails fast
        for line in check_reference(reference, settings, f"these predictions ({pred})",
                                    allow_mismatch=cfg.allow_mismatch):
            print(f"warning: --reference-results: {line}", file=sys.stderr)
    scan_split(base, indices=indices, full=True, progress=progress)
    check_predictions(pred, base, indices, cells, rels, progress)
    lut, valid = value_table(table, cfg.label_ids)
    inputs = [p for p in (cfg.from_disk, cfg.reference_results) if p is not None] + [pred, root]
    with replace_result(out, KIND, overwrite=overwrite, inputs=inputs) as folder:
        evaluators = {cell: SegEvaluator(table.num_classes, table.ignore_index, table.classes) for cell in cells}
        digests: dict[str, str] = {}
        log(f"score: {len(ids)} images ({cfg.data} {cfg.split}), {len(cells)} cells of predictions from {pred} "
            f"({'label ids' if cfg.label_ids else 'train ids'}) -> {out}")
        for i, image_id, rel in progress_bar(list(zip(indices, ids, rels, strict=True)), wanted=progress,
                                             desc="score", unit="img"):
            label = torch.from_numpy(base.decode_label(read_label_png(base.labels[i]), Path(base.labels[i])))
            for cell in cells:
                key = f"{prefix(cell)}/{rel}"
                prediction, data = read_prediction(pred / key, lut, valid)
                digests[key] = hashlib.sha256(data).hexdigest()
                evaluators[cell].process(torch.from_numpy(prediction), label, [image_id])
        settings["model_sha256"] = hashlib.sha256(
            "".join(f"{k}\t{digests[k]}\n" for k in sorted(digests)).encode()).hexdigest()
        saved = {}
        for cell, evaluator in evaluators.items():
            conf, cell_ids, areas = evaluator.results()
            saved[cell] = {"conf": conf, "ids": cell_ids, "areas": areas}
        scores = {cell: segmentation_metrics(saved[cell]["conf"]) for cell in cells}
        grid = {c: {s: scores[(c, s)]["mIoU"] for s in cfg.severities} for c in cfg.corruptions}
        result = robustness_summary(scores[CLEAN]["mIoU"], grid, cfg.corruptions, cfg.severities, reference)
        result.update(
            model=f"predictions:{pred}", dataset=cfg.data, split=cfg.split, num_images=len(ids),
            corruptions=list(cfg.corruptions), severities=list(cfg.severities), base_seed=base_seed,
            clean_metrics={k: scores[CLEAN][k] for k in ("mIoU", "aAcc", "mAcc")},
            inference={**settings["inference"], "scale": as_int_list(inference["scale"])},
            backend_per_cell={c: {s: f"{BACKEND}:{backends[c]}" for s in cfg.severities} for c in cfg.corruptions},
            corrupt_on=None, prediction_values="label ids" if cfg.label_ids else "train ids", settings=settings)
        write_outputs(folder, result, scores, saved, config=asdict(cfg), base_seed=base_seed, inputs={
            "model": f"predictions:{pred}", "predictions": str(pred), "model_sha256": settings["model_sha256"],
            "dataset": cfg.data, "split": cfg.split, "settings": settings})
    return result
