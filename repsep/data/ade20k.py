"""ADE20K / SceneParsing150 (Zhou et al., CVPR 2017) in the ``ADEChallengeData2016`` layout, 150 classes.

``images/<training|validation>/<stem>.jpg`` with ``annotations/<same>/<stem>.png`` whose values are 0 = other and
1..150 = classes (extensions in any case: .JPG, .jpeg, .PNG); loading applies mmseg's ``reduce_zero_label``
(0 -> 255 ignore, k -> k - 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repsep.data.base import SegmentationDataset, Transform, invalid_values, list_files, name_index
from repsep.data.labels import ADE20K
from repsep.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg")
"""Image extensions read (any case: .JPG, .jpeg, .JPEG too)."""
SPLIT_FOLDERS = {"train": "training", "val": "validation", "training": "training", "validation": "validation"}

_VALID = np.zeros(256, dtype=bool)
_VALID[: ADE20K.num_classes + 1] = True
_REDUCE_ZERO_LABEL = np.full(256, ADE20K.ignore_index, dtype=np.int64)
_REDUCE_ZERO_LABEL[1 : ADE20K.num_classes + 1] = np.arange(ADE20K.num_classes)


class ADE20KDataset(SegmentationDataset):
    """ADE20K split ``train``/``val`` (folders ``training``/``validation``); ids are the file stems."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 spec: str | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"{root}: ADE20K root folder not found")
        if split not in SPLIT_FOLDERS:
            raise UserError(f"split {split!r}: ADE20K has splits {sorted(SPLIT_FOLDERS)}")
        folder = SPLIT_FOLDERS[split]
        images = [p for p in list_files(root / "images" / folder, "*.*", f"ADE20K {split} images")
                  if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise UserError(f"{root / 'images' / folder}: no .jpg/.jpeg files found (ADE20K {split} images)")
        annotations = name_index(root / "annotations" / folder)
        labels = []
        for image in images:
            label = annotations.get(f"{image.stem}.png".lower())
            if label is None:
                raise UserError(f"{image}: no label (expected {root / 'annotations' / folder / (image.stem + '.png')})")
            labels.append(label)
        super().__init__(images, labels, [image.stem for image in images], class_table=ADE20K,
                         spec=spec or f"ade20k:{root}", split=split, transform=transform)

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        bad = invalid_values(raw, _VALID)
        if bad:
            raise UserError(f"{path}: values {bad[:8]} are not ADE20K labels (0 = other, 1..150)")
        return _REDUCE_ZERO_LABEL[raw]
