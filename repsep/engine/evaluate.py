"""The ``eval`` command's library side: evaluate a model export on a dataset split and write the result folder.

Output folder: ``metrics.json`` (full precision), ``per_class.csv``, ``metrics.md`` (the table people read),
``per_image.npz`` (per-image areas for bootstrap), ``manifest.json``; with ``save_pred`` also colourised
predictions ``<id>.png`` in the dataset palette and error maps ``<id>_error.png`` (black = ignored,
grey = correct, red = wrong).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repsep.engine import distributed as dist
from repsep.errors import UserError
from repsep.io import atomic_save, atomic_write_json, atomic_write_npz, atomic_write_text, refuse_finished_output

ERROR_COLOURS = {"ignore": (0, 0, 0), "correct": (96, 96, 96), "wrong": (255, 0, 0)}


def colourise(pred: np.ndarray, palette: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    """Class ids ``[H, W]`` -> RGB uint8 ``[H, W, 3]`` (ids outside the palette are black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:len(palette)] = palette
    return lut[np.clip(pred, 0, 255).astype(np.uint8)]


def error_map(pred: np.ndarray, label: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]``: black where the label is ignored, grey where correct, red where wrong."""
    out = np.empty((*label.shape, 3), dtype=np.uint8)
    out[:] = ERROR_COLOURS["wrong"]
    out[pred == label] = ERROR_COLOURS["correct"]
    out[label == ignore_index] = ERROR_COLOURS["ignore"]
    return out


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    atomic_save(path, lambda f: f.write(buf.getvalue()))


def _fmt(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def metrics_table(result: dict[str, Any]) -> str:
    """Markdown: a summary line and a per-class table (IoU / Acc in percent; '-' for classes absent everywhere)."""
    lines = [f"**mIoU {result['mIoU']:.2f}** | aAcc {result['aAcc']:.2f} | mAcc {result['mAcc']:.2f} | "
             f"{result['num_images']} images | {result['dataset']} ({result['split']}) | mode {result['mode']}"
             + (f", scales {result['scales']}" if list(result["scales"]) != [1.0] else "")
             + (", flip" if result["flip"] else ""), "", "| class | IoU | Acc |", "|---|---:|---:|"]
    for name, v in result["per_class"].items():
        lines.append(f"| {name} | {_fmt(v['IoU']) or '-'} | {_fmt(v['Acc']) or '-'} |")
    return "\n".join(lines) + "\n"


def _hw(v: Any) -> tuple[int, int] | None:
    return None if v is None else (int(v[0]), int(v[1]))


def evaluate_checkpoint(model_path: str | Path, out: str | Path, *, data: str | None = None, split: str = "val",
                        mode: str | None = None, crop: tuple[int, int] | None = None,
                        stride: tuple[int, int] | None = None, scales: tuple[float, ...] | None = None,
                        flip: bool | None = None, save_pred: str | Path | None = None, num_workers: int = 2,
                        overwrite: bool = False, progress: bool | None = None) -> dict[str, Any]:
    """Evaluate ``model_path`` (a ``model_final.pt``) on ``data`` (default: the dataset it was trained on).

    Inference settings left as None come from the run's ``eval`` config (whole image when there is none).
    Runs under torchrun too (images sharded across ranks, rank 0 writes). Returns the ``metrics.json`` dict.
    """
    from repsep.data import open_dataset
    from repsep.data.transforms import EvalTransform
    from repsep.engine.checkpoint import load_model
    from repsep.engine.inference import MODES, evaluate_dataset
    from repsep.manifest import build_manifest, sha256_file
    from repsep.metrics import SegEvaluator

    refuse_finished_output(out, overwrite)
    device = dist.init_from_env()
    loaded = load_model(model_path, map_location=device)
    run_eval = loaded.train_config.get("eval") or {}
    mode = mode or run_eval.get("mode", "whole")
    if mode not in MODES:
        raise UserError(f"--mode {mode}: choose one of {', '.join(MODES)}")
    crop = crop or _hw(run_eval.get("crop"))
    stride = stride or _hw(run_eval.get("stride"))
    if mode == "slide" and (crop is None or stride is None):
        raise UserError("--mode slide: needs --crop and --stride (the model's run config has none)")
    scales = tuple(scales or run_eval.get("scales") or (1.0,))
    flip = bool(run_eval.get("flip", False)) if flip is None else flip
    spec = data or loaded.dataset_spec
    dataset = open_dataset(spec, split, transform=EvalTransform(scale=_hw(run_eval.get("scale"))))
    table = dataset.class_table
    if table.num_classes != loaded.class_table.num_classes:
        raise UserError(f"{model_path}: the model predicts {loaded.class_table.num_classes} classes "
                        f"({loaded.class_table.name}) but dataset {spec!r} has {table.num_classes} ({table.name})")

    on_prediction = None
    if save_pred is not None:
        pred_dir = Path(save_pred)

        def on_prediction(index: int, image_id: str, pred: torch.Tensor, label: torch.Tensor) -> None:
            p, lab = pred.numpy(), label.numpy()
            _save_png(pred_dir / f"{image_id}.png", colourise(p, table.palette))
            _save_png(pred_dir / f"{image_id}_error.png", error_map(p, lab, table.ignore_index))

    evaluator = SegEvaluator(table.num_classes, table.ignore_index, list(table.classes))
    evaluate_dataset(loaded.model, dataset, evaluator, mode=mode, crop=crop, stride=stride, scales=scales, flip=flip,
                     device=device, num_workers=num_workers, progress=progress, on_prediction=on_prediction)
    scores = evaluator.evaluate()
    result = {"mIoU": scores["mIoU"], "aAcc": scores["aAcc"], "mAcc": scores["mAcc"],
              "per_class": scores["per_class"], "num_images": scores["num_images"], "model": str(model_path),
              "model_name": loaded.model_config.name, "dataset": spec, "split": split, "mode": mode,
              "crop": crop, "stride": stride, "scales": list(scales), "flip": flip}
    if dist.is_main():
        out = Path(out)
        atomic_write_json(out / "metrics.json", result)
        rows = ["class,IoU,Acc"] + [f"{name},{_csv(v['IoU'])},{_csv(v['Acc'])}"
                                    for name, v in result["per_class"].items()]
        atomic_write_text(out / "per_class.csv", "\n".join(rows) + "\n")
        atomic_write_text(out / "metrics.md", metrics_table(result))
        per_image = evaluator.per_image()
        atomic_write_npz(out / "per_image.npz", per_image)
        settings = {k: result[k] for k in ("dataset", "split", "mode", "crop", "stride", "scales", "flip")}
        atomic_write_json(out / "manifest.json", build_manifest(
            "eval", config=settings, inputs={"model": str(model_path), "model_sha256": sha256_file(model_path),
                                             "dataset": spec, "save_pred": str(save_pred) if save_pred else None}))
    dist.barrier()
    return result


def _csv(v: float | None) -> str:
    return "" if v is None or math.isnan(v) else repr(float(v))
