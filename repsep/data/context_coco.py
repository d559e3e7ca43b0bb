"""RSSeg's other benchmarks: Pascal Context 59 and COCO-Stuff (164k and 10k), 59 / 171 classes, as mmseg reads them.

- Pascal Context 59: ``VOC2010/JPEGImages/<stem>.jpg`` with ``VOC2010/SegmentationClassContext/<stem>.png`` (0 =
  background, 1..59 = classes), split lists ``VOC2010/ImageSets/SegmentationContext/{train,val}.txt``; loading
  applies mmseg's ``reduce_zero_label`` (0 -> ignore, k -> k - 1), as ``PascalContextDataset59``. The root may be
  ``VOC2010`` or the ``VOCdevkit`` above it.
- COCO-Stuff 164k: ``images/{train2017,val2017}/<stem>.jpg`` with ``annotations/<same>/<stem>_labelTrainIds.png``
  (0..170, 255 = ignore; what mmseg's converter and ``repsep-bench data convert`` write); without it the official
  stuffthingmap ``annotations/<same>/<stem>.png`` (0..181, 255) is mapped through the converter's table.
- COCO-Stuff 10k: ``images/{train2014,test2014}/<stem>.jpg`` with ``annotations/<same>/<stem>_labelTrainIds.png``
  as mmseg's 10k converter writes them (0 = unlabeled, 1..171 = classes); loading applies ``reduce_zero_label`` as
  mmseg's ``coco-stuff10k`` config does. ``val`` and ``test`` both name ``test2014``.

Where each layout was confirmed: docs/datasets.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repsep.data.base import SegmentationDataset, Transform, invalid_values, list_files, name_index
from repsep.data.tables import coco_stuffthingmap_lut, load_table
from repsep.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg")
COCO164K_SPLITS = {"train": "train2017", "val": "val2017", "train2017": "train2017", "val2017": "val2017"}
COCO10K_SPLITS = {"train": "train2014", "val": "test2014", "test": "test2014", "train2014": "train2014",
                  "test2014": "test2014"}
TRAINIDS_SUFFIX = "_labelTrainIds.png"


def reduce_zero_label_lut(num_classes: int) -> np.ndarray:
    """np.int64[256]: 0 -> 255, k -> k - 1 for k in 1..num_classes, 255 -> 255 (mmseg's reduce_zero_label)."""
    lut = np.full(256, 255, dtype=np.int64)
    lut[1 : num_classes + 1] = np.arange(num_classes)
    return lut


def _valid(values) -> np.ndarray:
    valid = np.zeros(256, dtype=bool)
    valid[list(values)] = True
    return valid


class PascalContext59Dataset(SegmentationDataset):
    """Pascal Context 59 split ``train`` / ``val`` (the SegmentationContext lists); ids are the VOC stems."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 spec: str | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"{root}: Pascal Context root folder not found")
        if (root / "VOC2010").is_dir() and not (root / "JPEGImages").is_dir():
            root = root / "VOC2010"
        if split not in ("train", "val"):
            raise UserError(f"split {split!r}: Pascal Context has splits train and val")
        listing = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
        try:
            stems = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        except FileNotFoundError:
            raise UserError(f"{listing}: split list not found (Pascal Context {split})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{listing}: cannot read the split list ({e})") from None
        if not stems:
            raise UserError(f"{listing}: empty split list (Pascal Context {split})")
        jpegs, masks = name_index(root / "JPEGImages"), name_index(root / "SegmentationClassContext")
        images, labels = [], []
        for stem in stems:
            image = next((jpegs[n] for s in IMAGE_SUFFIXES if (n := f"{stem}{s}".lower()) in jpegs), None)
            if image is None:
                raise UserError(f"{listing}: lists {stem} but {root / 'JPEGImages' / (stem + '.jpg')} is missing")
            label = masks.get(f"{stem}.png".lower())
            if label is None:
                raise UserError(f"{image}: no label (expected {root / 'SegmentationClassContext' / (stem + '.png')})")
            images.append(image)
            labels.append(label)
        table = load_table("pascal_context59")
        self._lut = reduce_zero_label_lut(table.num_classes)
        self._valid = _valid([*range(table.num_classes + 1), 255])
        super().__init__(images, labels, stems, class_table=table, spec=spec or f"pascal_context59:{root}",
                         split=split, transform=transform)

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        bad = invalid_values(raw, self._valid)
        if bad:
            raise UserError(f"{path}: values {bad[:8]} are not Pascal Context 59 labels (0 = background, 1..59, "
                            "255 = ignore)")
        return self._lut[raw]


class _COCOStuff(SegmentationDataset):
    """COCO-Stuff image/label pairs under ``images/<folder>`` and ``annotations/<folder>``."""

    def _pairs(self, root: Path, folder: str, what: str, raw_fallback: bool) -> tuple[list[Path], list[Path]]:
        if not root.is_dir():
            raise UserError(f"{root}: {what} root folder not found")
        images = [p for p in list_files(root / "images" / folder, "*.*", f"{what} images")
                  if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise UserError(f"{root / 'images' / folder}: no .jpg/.jpeg files found ({what} images)")
        annotations = name_index(root / "annotations" / folder)
        labels = []
        for image in images:
            label = annotations.get(f"{image.stem}{TRAINIDS_SUFFIX}".lower())
            if label is None and raw_fallback:
                label = annotations.get(f"{image.stem}.png".lower())
            if label is None:
                raise UserError(f"{image}: no label (expected "
                                f"{root / 'annotations' / folder / (image.stem + TRAINIDS_SUFFIX)})")
            labels.append(label)
        return images, labels


class COCOStuff164kDataset(_COCOStuff):
    """COCO-Stuff 164k split ``train`` / ``val`` (train2017 / val2017), 171 classes; ids are the COCO stems."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 spec: str | None = None) -> None:
        root = Path(root)
        if split not in COCO164K_SPLITS:
            raise UserError(f"split {split!r}: COCO-Stuff 164k has splits train and val (train2017, val2017)")
        images, labels = self._pairs(root, COCO164K_SPLITS[split], f"COCO-Stuff 164k {split}", raw_fallback=True)
        table = load_table("coco_stuff171")
        self._valid = _valid([*range(table.num_classes), 255])
        super().__init__(images, labels, [p.stem for p in images], class_table=table,
                         spec=spec or f"coco_stuff164k:{root}", split=split, transform=transform)

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if path.name.lower().endswith(TRAINIDS_SUFFIX.lower()):
            bad = invalid_values(raw, self._valid)
            if bad:
                raise UserError(f"{path}: values {bad[:8]} are not COCO-Stuff train ids (0..170, 255 = ignore)")
            return raw.astype(np.int64)
        return stuffthing_to_trainids(raw, path).astype(np.int64)


class COCOStuff10kDataset(_COCOStuff):
    """COCO-Stuff 10k split ``train`` / ``val`` (train2014 / test2014), 171 classes; ids are the COCO stems."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 spec: str | None = None) -> None:
        root = Path(root)
        if split not in COCO10K_SPLITS:
            raise UserError(f"split {split!r}: COCO-Stuff 10k has splits train and val (train2014, test2014)")
        images, labels = self._pairs(root, COCO10K_SPLITS[split], f"COCO-Stuff 10k {split}", raw_fallback=False)
        table = load_table("coco_stuff171")
        self._lut = reduce_zero_label_lut(table.num_classes)
        self._valid = _valid([*range(table.num_classes + 1), 255])
        super().__init__(images, labels, [p.stem for p in images], class_table=table,
                         spec=spec or f"coco_stuff10k:{root}", split=split, transform=transform)

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        bad = invalid_values(raw, self._valid)
        if bad:
            raise UserError(f"{path}: values {bad[:8]} are not COCO-Stuff 10k labels (0 = unlabeled, 1..171, "
                            "255 = ignore)")
        return self._lut[raw]


def stuffthing_to_trainids(raw: np.ndarray, path: Path) -> np.ndarray:
    """uint8 COCO-Stuff train ids (0..170, 255) of an official stuffthingmap PNG's ids; other values: UserError."""
    lut = coco_stuffthingmap_lut()
    bad = invalid_values(raw, lut >= 0)
    if bad:
        raise UserError(f"{path}: values {bad[:8]} are not COCO-Stuff stuffthingmap ids (0..181 without the 11 "
                        "unused thing ids, 255 = unlabeled)")
    return lut[raw].astype(np.uint8)
