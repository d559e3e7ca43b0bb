"""The dataset contract shared by Cityscapes, ADE20K and SynthCity, and the checked image/label readers.

A :data:`Sample` is a plain dict: ``image`` (np.uint8 HxWx3 RGB), ``label`` (np.int64 HxW, 255 = ignore) and ``id``
(a stable string such as ``frankfurt_000000_000294`` or an ADE file stem).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from repsep.data.labels import ClassTable
from repsep.errors import UserError

Sample = dict[str, Any]
Transform = Callable[[Sample, np.random.Generator], Sample]


def _open_image(path: Path, what: str) -> Image.Image:
    try:
        if path.stat().st_size == 0:
            raise UserError(f"{path}: empty file (0 bytes), expected a {what}")
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a readable image, expected a {what}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path}: unreadable or truncated {what} ({e})") from None
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file into np.uint8 HxWx3 RGB (grayscale, palette and RGBA images are converted)."""
    path = Path(path)
    img = _open_image(path, "8-bit image")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise UserError(f"{path}: {img.mode} (16-bit/float) image, expected 8-bit RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_label_png(path: str | Path) -> np.ndarray:
    """Decode a label map: an 8-bit single-channel PNG (mode ``L`` or ``P``) -> np.uint8 HxW of raw values."""
    path = Path(path)
    img = _open_image(path, "8-bit single-channel label PNG")
    if img.mode not in ("L", "P"):
        raise UserError(f"{path}: label image has mode {img.mode}, expected an 8-bit single-channel PNG (mode L)")
    return np.asarray(img, dtype=np.uint8)


def invalid_values(raw: np.ndarray, valid: np.ndarray) -> list[int]:
    """Byte values present in ``raw`` (uint8) for which the bool[256] table ``valid`` is False."""
    present = np.bincount(raw.ravel(), minlength=256) > 0
    return np.flatnonzero(present & ~valid).tolist()


class SampleDataset(Dataset):
    """Items are ``transform(load(index), rng)``: ``ds[i]`` gives the deterministic sample ``i``; ``ds[i, seed]``
    draws the random transform from ``np.random.default_rng(seed)`` (training). Without a transform the raw
    :data:`Sample` is returned. Subclasses provide ``load(index)`` and a ``transform`` attribute."""

    transform: Transform | None = None

    def load(self, index: int) -> Sample:
        raise NotImplementedError

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        index, seed = key if isinstance(key, tuple) else (key, key)
        sample = self.load(index)
        if self.transform is None:
            return sample
        return self.transform(sample, np.random.default_rng(seed))


class SegmentationDataset(SampleDataset):
    """Image/label file pairs with a class table. Subclasses find the files and decode label values."""

    def __init__(self, images: Sequence[Path], labels: Sequence[Path], ids: Sequence[str], *,
                 class_table: ClassTable, spec: str, split: str, transform: Transform | None = None) -> None:
        if not (len(images) == len(labels) == len(ids)):
            raise ValueError("images, labels and ids must have the same length")
        self.images = list(images)
        self.labels = list(labels)
        self.ids = list(ids)
        self.class_table = class_table
        self.spec = spec
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, split={self.split!r}, images={len(self)})"

    def image_id(self, index: int) -> str:
        return self.ids[index]

    def group_of(self, index: int) -> str:
        """The stratum of image ``index`` for spread-out subsets: its folder (the city in a Cityscapes layout)."""
        return self.images[index].parent.name

    def fingerprint_kind(self) -> str:
        """What names the dataset in :meth:`fingerprint`: the spec's kind, plus the variant where one spec kind has
        several (ACDC condition, Foggy Cityscapes beta)."""
        return self.spec.partition(":")[0]

    def fingerprint(self) -> str:
        """sha256 (16 hex) of what identifies this split's content cheaply: the dataset kind, split, class table,
        and every image id with the byte sizes of its image and label files (no pixel is read). Two folders
        with the same files give the same fingerprint wherever they lie; another dataset, split or a changed
        file gives another one."""
        import hashlib

        h = hashlib.sha256()
        h.update(f"{self.fingerprint_kind()}|{self.split}|{self.class_table.name}|"
                 f"{self.class_table.num_classes}\n".encode())
        for image_id, image, label in zip(self.ids, self.images, self.labels, strict=True):
            try:
                sizes = f"{image.stat().st_size}|{label.stat().st_size}"
            except OSError as e:
                raise UserError(f"{e.filename}: cannot read ({e.strerror})") from None
            h.update(f"{image_id}|{image.suffix.lower()}|{sizes}\n".encode())
        return h.hexdigest()[:16]

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Raw uint8 label values -> np.int64 train ids (``ignore_index`` = void); UserError on unknown values."""
        raise NotImplementedError

    def load(self, index: int) -> Sample:
        """The untransformed sample ``index``; UserError naming the file on unreadable or mismatched data."""
        image = read_image(self.images[index])
        label_path = self.labels[index]
        label = self.decode_label(read_label_png(label_path), label_path)
        if label.shape != image.shape[:2]:
            raise UserError(f"{label_path}: label is {label.shape[1]}x{label.shape[0]} (WxH) but its image "
                            f"{self.images[index].name} is {image.shape[1]}x{image.shape[0]}")
        return {"image": image, "label": label, "id": self.ids[index]}



def list_files(folder: Path, pattern: str, what: str) -> list[Path]:
    """Sorted files matching the glob ``pattern`` under ``folder``, matched case-insensitively (``*.png`` also
    finds ``.PNG``; folder parts of the pattern match as usual); UserError if the folder is missing or has none."""
    import fnmatch
    import os

    if not folder.is_dir():
        raise UserError(f"{folder}: {what} folder not found")
    *dirs, name = pattern.split("/")
    parents = [folder]
    for part in dirs:
        parents = sorted(p for parent in parents for p in parent.glob(part) if p.is_dir())
    name = name.lower()
    files = sorted(parent / f for parent in parents for f in os.listdir(parent)
                   if fnmatch.fnmatchcase(f.lower(), name) and (parent / f).is_file())
    if not files:
        raise UserError(f"{folder}: no {pattern} files found ({what}; extensions match in any case)")
    return files


def name_index(folder: Path) -> dict[str, Path]:
    """``{lower-case file name: path}`` of the files directly in ``folder`` (empty when it is missing), so a label
    ``x.png`` is found as ``x.PNG`` too."""
    if not folder.is_dir():
        return {}
    return {p.name.lower(): p for p in sorted(folder.iterdir(), reverse=True) if p.is_file()}


def dataset_root(base) -> Path:
    """The folder that holds a file-based dataset (the common parent of its image and label files)."""
    try:
        files = [*base.images, *base.labels]
    except AttributeError:
        raise UserError(f"{base.spec}: not a file-based dataset, cannot be written to or read from disk") from None
    if not files:
        raise UserError(f"{base.spec}: holds no files")
    return Path(os.path.commonpath([str(Path(p).resolve()) for p in files]))
