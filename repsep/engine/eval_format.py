"""How eval results look: the Markdown metrics table and the colourised prediction / error-map images."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

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


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG file bytes of an RGB uint8 ``[H, W, 3]`` array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _fmt(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def metrics_table(result: dict[str, Any]) -> str:
    """Markdown: a summary line and a per-class table (IoU / Acc in percent; '-' for classes absent everywhere)."""
    precision = (result.get("settings") or {}).get("precision", "fp32")
    lines = [f"**mIoU {result['mIoU']:.2f}** | aAcc {result['aAcc']:.2f} | mAcc {result['mAcc']:.2f} | "
             f"{result['num_images']} images | {result['dataset']} ({result['split']}) | mode {result['mode']}"
             + (f", scales {result['scales']}" if list(result["scales"]) != [1.0] else "")
             + (", flip" if result["flip"] else "")
             + (f", precision {precision}" if precision != "fp32" else ""),
             "", "| class | IoU | Acc |", "|---|---:|---:|"]
    for name, v in result["per_class"].items():
        lines.append(f"| {name} | {_fmt(v['IoU']) or '-'} | {_fmt(v['Acc']) or '-'} |")
    return "\n".join(lines) + "\n"
