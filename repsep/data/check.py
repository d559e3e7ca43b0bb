"""Validate every file of a dataset split and count label pixels per class (``repsep-bench data check``); also list
the images that are not RGB on disk (the readers convert grayscale / palette / RGBA images) and the images without
a labelled pixel (every label pixel is ignore)."""

from __future__ import annotations

from typing import Any

import numpy as np

from repsep.data.base import SegmentationDataset


def class_histogram(dataset: SegmentationDataset, progress: bool = False) -> dict[str, Any]:
    """Load (and so validate) every sample; per-class pixel and image counts, ignored pixels, image sizes.

    Raises UserError naming the first bad file.
    """
    from PIL import Image

    from repsep.progress import progress_bar

    table = dataset.class_table
    k = table.num_classes
    pixels = np.zeros(k, dtype=np.int64)
    images = np.zeros(k, dtype=np.int64)
    ignored, sizes = 0, set()
    non_rgb: dict[str, list[str]] = {}
    unlabelled: list[str] = []
    for i in progress_bar(range(len(dataset)), wanted=progress, desc="check", unit="img", leave=False):
        label = dataset.load(i)["label"]
        with Image.open(dataset.images[i]) as img:  # load() succeeded, so the header reads
            if img.mode != "RGB":
                non_rgb.setdefault(img.mode, []).append(dataset.image_id(i))
        if not (label != table.ignore_index).any():
            unlabelled.append(dataset.image_id(i))
        sizes.add(label.shape)
        counts = np.bincount(label.ravel(), minlength=256)
        pixels += counts[:k]
        images += counts[:k] > 0
        ignored += int(counts[table.ignore_index])
    total = int(pixels.sum()) + ignored
    return {
        "dataset": dataset.spec, "split": dataset.split, "num_images": len(dataset), "num_classes": k,
        "image_sizes": sorted([h, w] for h, w in sizes), "ignored_pixels": ignored, "total_pixels": total,
        "classes_present": int((pixels > 0).sum()),
        "non_rgb_images": {"count": sum(len(v) for v in non_rgb.values()),
                           "modes": {mode: len(ids) for mode, ids in sorted(non_rgb.items())},
                           "ids": sorted(i for ids in non_rgb.values() for i in ids)},
        "unlabelled_images": {"count": len(unlabelled), "ids": sorted(unlabelled)},
        "classes": {name: {"pixels": int(p), "percent": 100.0 * int(p) / total if total else 0.0, "images": int(n)}
                    for name, p, n in zip(table.classes, pixels, images, strict=True)},
    }


def format_histogram(hist: dict[str, Any]) -> str:
    """A plain-text table of :func:`class_histogram` for people."""
    width = max(len(name) for name in hist["classes"])
    lines = [f"{hist['dataset']} [{hist['split']}]: {hist['num_images']} images, sizes (HxW) "
             + ", ".join(f"{h}x{w}" for h, w in hist["image_sizes"]),
             f"{'class':<{width}}  {'pixels':>12}  {'%':>7}  {'images':>6}"]
    for name, row in hist["classes"].items():
        lines.append(f"{name:<{width}}  {row['pixels']:>12}  {row['percent']:>7.3f}  {row['images']:>6}")
    ignored = 100.0 * hist["ignored_pixels"] / hist["total_pixels"] if hist["total_pixels"] else 0.0
    lines.append(f"{'(ignored 255)':<{width}}  {hist['ignored_pixels']:>12}  {ignored:>7.3f}")
    lines.append(f"{hist['classes_present']} of {hist['num_classes']} classes present")
    non_rgb, unlabelled = hist["non_rgb_images"], hist["unlabelled_images"]
    if non_rgb["count"]:
        modes = ", ".join(f"{n} {mode}" for mode, n in non_rgb["modes"].items())
        lines.append(f"{non_rgb['count']} images are not RGB on disk ({modes}; converted to RGB when read): "
                     + _first(non_rgb["ids"]))
    if unlabelled["count"]:
        lines.append(f"{unlabelled['count']} images have no labelled pixel (every pixel ignore): "
                     + _first(unlabelled["ids"]))
    return "\n".join(lines)


def _first(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f", ... ({len(ids) - n} more)" if len(ids) > n else "")
