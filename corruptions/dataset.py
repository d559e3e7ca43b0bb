"""Corrupted views of a segmentation dataset, following the ``repsep.data`` dataset contract.

- :class:`DatasetView`: the base dataset, optionally its first ``num_images`` (quick runs).
- :class:`CorruptedDataset`: corrupts each image on the fly with the seed
  ``image_seed(id, corruption, severity, base_seed)``, so the pixels do not depend on worker count or order.
- :class:`FromDiskCorrupted`: reads images written by :func:`corruptions.materialize.materialize`.

Labels are always the base dataset's (corruptions do not move labels; elastic/zoom, which do, are reported as such).
"""

from __future__ import annotations

import os
from pathlib import Path

from corruptions.backends.base import CorruptionBackend
from corruptions.suite import check_severity, group_of, image_seed
from repsep.data.base import Sample, SampleDataset, read_image
from repsep.errors import UserError


class DatasetView(SampleDataset):
    """The first ``num_images`` samples of ``base`` (all when None) with the dataset contract.

    ``transform`` starts as the base's and may be replaced; ``class_table``, ``spec`` and ``split`` are the base's.
    """

    def __init__(self, base, num_images: int | None = None) -> None:
        if num_images is not None and num_images < 1:
            raise UserError(f"--num-images {num_images}: must be at least 1")
        self.base = base
        self.length = len(base) if num_images is None else min(num_images, len(base))
        self.class_table = base.class_table
        self.spec = base.spec
        self.split = base.split
        self.transform = base.transform

    def __len__(self) -> int:
        return self.length

    def _index(self, index: int) -> int:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} images")
        return index

    def image_id(self, index: int) -> str:
        return self.base.image_id(self._index(index))

    def load(self, index: int) -> Sample:
        """The untransformed sample ``index`` (image uint8 HxWx3 RGB, label int64 HxW, id)."""
        return self.base.load(self._index(index))


class CorruptedDataset(DatasetView):
    """``base`` with every image corrupted by ``backend`` at (``corruption``, ``severity``), labels unchanged."""

    def __init__(self, base, corruption: str, severity: int, backend: CorruptionBackend, base_seed: int = 0,
                 num_images: int | None = None) -> None:
        super().__init__(base, num_images)
        group_of(corruption)
        if not backend.supports(corruption):
            raise UserError(f"--backend {backend.name}: does not implement {corruption}")
        self.corruption = corruption
        self.severity = check_severity(severity)
        self.backend = backend
        self.base_seed = base_seed

    def load(self, index: int) -> Sample:
        sample = super().load(index)
        seed = image_seed(sample["id"], self.corruption, self.severity, self.base_seed)
        return {**sample, "image": self.backend.corrupt(sample["image"], self.corruption, self.severity, seed)}


def dataset_root(base) -> Path:
    """The folder that holds a file-based dataset (the common parent of its image and label files)."""
    try:
        files = [*base.images, *base.labels]
    except AttributeError:
        raise UserError(f"{base.spec}: not a file-based dataset, cannot be written to or read from disk") from None
    return Path(os.path.commonpath([str(Path(p).resolve()) for p in files]))


def materialized_relpath(base, index: int, root: Path) -> Path:
    """Where image ``index`` lives inside a ``<corruption>/<severity>/`` folder: the base dataset's own relative
    path (e.g. ``leftImg8bit/val/<city>/<stem>_leftImg8bit.png``), always as lossless PNG (ADE20K JPEGs too, so a
    corruption is not compressed twice). ``root`` is :func:`dataset_root` of ``base``.
    """
    return Path(base.images[index]).resolve().relative_to(root).with_suffix(".png")


class FromDiskCorrupted(DatasetView):
    """Corrupted images read from ``root/<corruption>/<severity>/`` (a materialized tree), labels from ``base``."""

    def __init__(self, base, root: str | Path, corruption: str, severity: int, num_images: int | None = None) -> None:
        super().__init__(base, num_images)
        group_of(corruption)
        self.corruption = corruption
        self.severity = check_severity(severity)
        self.folder = Path(root) / corruption / str(severity)
        if not self.folder.is_dir():
            raise UserError(f"{self.folder}: not found; write it with `repsep-bench corruptions materialize "
                            f"--corruptions {corruption} --severities {severity} --out {root}`")
        self._base_root = dataset_root(base)

    def image_path(self, index: int) -> Path:
        return self.folder / materialized_relpath(self.base, self._index(index), self._base_root)

    def load(self, index: int) -> Sample:
        sample = super().load(index)
        path = self.image_path(index)
        image = read_image(path)
        if image.shape != sample["image"].shape:
            raise UserError(f"{path}: image is {image.shape[1]}x{image.shape[0]} but the clean image is "
                            f"{sample['image'].shape[1]}x{sample['image'].shape[0]}")
        return {**sample, "image": image}
