"""The result files of a robustness sweep, shared by ``corrupt`` (:mod:`corruptions.evaluate`) and ``score``
(:mod:`corruptions.score`): ``robustness.json``, ``robustness.csv``, ``robustness.md``, ``per_image.npz`` and
``manifest.json`` in an owned folder of kind ``corrupt``.

``saved`` maps each cell (``("clean", 0)`` first, then ``(corruption, severity)``) to ``{"conf": int64 [C, C],
"ids": [N] image ids, "areas": int64 [N, 4, C]}`` (intersect, union, pred_area, label_area per image and class).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from corruptions.cells import AREAS, CLEAN, cell_name, write_bytes
from corruptions.suite import group_of
from repsep.io import dumps_json, npz_bytes

KIND = "corrupt"


def write_outputs(folder, result: dict[str, Any], scores: dict, saved: dict, *, config: dict[str, Any],
                  inputs: dict[str, Any], base_seed: int) -> None:
    """Write the result files of ``result`` (the ``robustness.json`` dict) into the owned ``folder``; ``scores``
    maps each cell to its :func:`repsep.metrics.segmentation_metrics`; ``config`` and ``inputs`` go into the
    manifest (``inputs`` should hold ``model``, ``model_sha256``, ``dataset``, ``split`` and ``settings``)."""
    from repsep.manifest import build_manifest

    write_bytes(folder, "robustness.json", dumps_json(result).encode())
    rows = [["corruption", "group", "severity", "mIoU", "aAcc", "mAcc", "source"]]
    for cell in saved:
        c, s = cell
        rows.append([c, "clean" if cell == CLEAN else group_of(c), s, *(repr(scores[cell][k]) for k in
                     ("mIoU", "aAcc", "mAcc")), "clean" if cell == CLEAN else result["backend_per_cell"][c][s]])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    write_bytes(folder, "robustness.csv", text.getvalue().encode())
    write_bytes(folder, "robustness.md", format_table(result, result["severities"]).encode())
    ids = saved[CLEAN]["ids"]
    arrays: dict[str, np.ndarray] = {"ids": np.array(ids, dtype=str), "settings": np.array([dumps_json(
        result["settings"])])}
    for cell, data in saved.items():
        if list(data["ids"]) != list(ids):
            raise RuntimeError(f"cell {cell_name(cell)} covers different images than the clean pass")
        prefix = "clean" if cell == CLEAN else f"{cell[0]}/{cell[1]}"
        areas = np.asarray(data["areas"])
        for k, name in enumerate(AREAS):
            arrays[f"{prefix}/{name}"] = areas[:, k]
    write_bytes(folder, "per_image.npz", npz_bytes(arrays))
    from repsep.engine import nodes

    manifest = build_manifest(KIND, seeds={"base_seed": base_seed}, config=config, inputs=inputs)
    manifest["launch"] = nodes.launch()  # processes and nodes (torchrun); the numbers do not depend on them
    write_bytes(folder, "manifest.json", dumps_json(manifest).encode())


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
