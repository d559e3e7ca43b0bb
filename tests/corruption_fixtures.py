"""A tiny Cityscapes-layout dataset for the corruption tests (3 val images in 2 cities, 64x96)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IDS = ("aachen_000000_000019", "aachen_000001_000019", "bremen_000000_000019")


def make_cityscapes(root: Path, size: tuple[int, int] = (64, 96)) -> Path:
    """Write leftImg8bit/val + gtFine/val (labelTrainIds) for :data:`IDS` under ``root``; returns ``root``."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for k, stem in enumerate(IDS):
        city = stem.split("_")[0]
        image = np.stack([(xx * (2 + k)) % 256, (yy * 4) % 256, ((xx + yy) * 3 + 40 * k) % 256], -1).astype(np.uint8)
        label = np.where(yy < h // 2, 0, 13).astype(np.uint8)  # road above, car below
        label[:4] = 255
        (root / "leftImg8bit" / "val" / city).mkdir(parents=True, exist_ok=True)
        (root / "gtFine" / "val" / city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png")
        Image.fromarray(label).save(root / "gtFine" / "val" / city / f"{stem}_gtFine_labelTrainIds.png")
    return root


def make_tiny_model(folder: Path) -> Path:
    """A tiny untrained baseline ViT exported to ``folder/model.pt`` for a Cityscapes fixture in ``folder/cs``."""
    import torch

    from repsep.data.labels import CITYSCAPES
    from repsep.engine.checkpoint import export_model
    from repsep.models import build_model
    from repsep.models.registry import model_config

    root = make_cityscapes(folder / "cs")
    torch.manual_seed(0)
    cfg = model_config("baseline_vit", size="tiny", num_classes=19, img_size=(64, 96))
    export_model(folder / "model.pt", build_model(cfg), cfg, CITYSCAPES, f"cityscapes:{root}", {})
    return folder / "model.pt"
