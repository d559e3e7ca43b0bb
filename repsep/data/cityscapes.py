"""Cityscapes (Cordts et al., CVPR 2016) in its official layout, 19 train classes.

``leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png`` with ``gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png``
(preferred) or ``<stem>_gtFine_labelIds.png`` mapped through the official labelId -> trainId table. File names are
matched ignoring case (``.PNG`` is read too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repsep.data.base import SegmentationDataset, Transform, invalid_values, list_files, name_index
from repsep.data.labels import CITYSCAPES, LABELID_TO_TRAINID, MAX_CITYSCAPES_LABELID
from repsep.errors import UserError

IMAGE_SUFFIX = "_leftImg8bit.png"
TRAINIDS_SUFFIX = "_gtFine_labelTrainIds.png"
LABELIDS_SUFFIX = "_gtFine_labelIds.png"

_VALID_TRAINIDS = np.zeros(256, dtype=bool)
_VALID_TRAINIDS[: CITYSCAPES.num_classes] = True
_VALID_TRAINIDS[CITYSCAPES.ignore_index] = True
_VALID_LABELIDS = np.zeros(256, dtype=bool)
_VALID_LABELIDS[: MAX_CITYSCAPES_LABELID + 1] = True


class CityscapesDataset(SegmentationDataset):
    """Cityscapes split ``train``/``val``/``test`` under ``root``; ids are ``<city>_<seq>_<frame>``."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 spec: str | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"{root}: Cityscapes root folder not found")
        images = list_files(root / "leftImg8bit" / split, f"*/*{IMAGE_SUFFIX}", f"Cityscapes {split} images")
        labels, ids = [], []
        folders: dict[Path, dict[str, Path]] = {}
        for image in images:
            stem = image.name[: -len(IMAGE_SUFFIX)]
            gt = root / "gtFine" / split / image.parent.name
            names = folders.setdefault(gt, name_index(gt))
            label = names.get(f"{stem}{TRAINIDS_SUFFIX}".lower()) or names.get(f"{stem}{LABELIDS_SUFFIX}".lower())
            if label is None:
                raise UserError(f"{image}: no label (expected {gt / (stem + TRAINIDS_SUFFIX)} or {LABELIDS_SUFFIX})")
            labels.append(label)
            ids.append(stem)
        super().__init__(images, labels, ids, class_table=CITYSCAPES, spec=spec or f"cityscapes:{root}",
                         split=split, transform=transform)

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return decode_cityscapes_label(raw, path, TRAINIDS_SUFFIX)


def decode_cityscapes_label(raw: np.ndarray, path: Path, trainids_suffix: str) -> np.ndarray:
    """int64 trainIds of a Cityscapes-labelled PNG: a file ending in ``trainids_suffix`` holds trainIds (checked),
    any other labelIds (checked, then mapped with the official table); a value outside the table is a UserError."""
    if path.name.lower().endswith(trainids_suffix.lower()):
        bad = invalid_values(raw, _VALID_TRAINIDS)
        if bad:
            raise UserError(f"{path}: values {bad[:8]} are not Cityscapes trainIds (0..18, 255 = ignore)")
        return raw.astype(np.int64)
    bad = invalid_values(raw, _VALID_LABELIDS)
    if bad:
        raise UserError(f"{path}: values {bad[:8]} are not Cityscapes labelIds (0..{MAX_CITYSCAPES_LABELID})")
    return LABELID_TO_TRAINID[raw].astype(np.int64)
