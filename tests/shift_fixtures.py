"""Fixtures for the ``shift`` tests: two small SynthCity folders made with other ``data synth`` knobs and seeds
(stand-ins for adverse conditions), and hand-made shift folders for the report tests (known mIoU differences, as in
tests/report_fixtures.py: the gain of ``rsseg`` is +10 mIoU points on every image of every dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from report_fixtures import N, areas, manifest, miou, settings, write

SHIFT_SETS = {"fogged": (1, {"texture_contrast": 0.3, "lighting_range": 0.8}),
              "dense": (2, {"object_density": 3.0, "thin_share": 0.8})}
"""name: (seed, SceneKnobs fields) of the condition folders, 3 val images each at 64x128."""

ENTRIES = {"clean": 0.0, "synthcity-fogged": 0.2, "synthcity-dense": 0.35}
"""Hand-made shift entries: name -> mIoU drop (fraction of the intersection lost) of every model."""


def make_condition_sets(root: Path) -> dict[str, Path]:
    from repsep.data.synthcity import SceneKnobs, generate

    return {name: generate(root / name, 0, 3, size=(64, 128), seed=seed, workers=1, knobs=SceneKnobs(**knobs))
            for name, (seed, knobs) in SHIFT_SETS.items()}


def make_shift(root: Path, name: str, gain: np.ndarray, *, entries: dict[str, float] | None = None,
               ids_of: dict[str, list[str]] | None = None, folder: Path | None = None) -> Path:
    """A shift folder of model ``name`` (files as ``repsep-bench shift`` writes them); ``ids_of`` replaces an
    entry's image ids (its settings change with them)."""
    folder = folder or root / f"shift_{name}"
    entries = ENTRIES if entries is None else entries
    arrays, records = {}, []
    for k, (entry, drop) in enumerate(entries.items()):
        ids = (ids_of or {}).get(entry) or [f"{entry}_{i:03d}" for i in range(N)]
        inter, union = areas(gain, drop, rng_seed=k)
        block = settings(name, ids, dataset=f"synthcity:/data/{entry}", dataset_fingerprint=f"{k:016x}")
        arrays.update({f"{entry}/ids": np.array(ids, dtype=str), f"{entry}/intersect": inter, f"{entry}/union": union,
                       f"{entry}/pred_area": union, f"{entry}/label_area": union})
        records.append({"name": entry, "dataset": block["dataset"], "split": "val", "folder": entry,
                        "mIoU": miou(inter, union), "num_images": len(ids), "settings": block})
    clean = records[0]["mIoU"]
    for r in records:
        r["ratio"] = 100.0 * r["mIoU"] / clean
    mean = float(np.mean([r["mIoU"] for r in records[1:]]))
    result = {"model": f"runs/{name}/model_final.pt", "model_name": "rsseg_vit", "model_sha256": settings(name)[
        "model_sha256"], "split": "val", "clean": records[0], "entries": records[1:], "mean": mean,
        "mean_ratio": 100.0 * mean / clean, "by_group": False, "settings": records[0]["settings"]}
    write(folder / "shift.json", json.dumps(result))
    np.savez(folder / "per_image.npz", **arrays)
    manifest(folder, "shift", {"model": f"runs/{name}/model_final.pt", "model_sha256": result["model_sha256"]})
    return folder
