"""Corrupted views of a segmentation dataset, following the ``repsep.data`` dataset contract.

- :class:`DatasetView`: the base dataset, or the samples at some of its indices (seeded subsets for quick runs).
- :class:`CorruptedDataset`: corrupts each image on the fly with the seed
  ``image_seed(id, corruption, severity, base_seed)``, so the pixels do not depend on worker count or order.
- :class:`FromDiskCorrupted`: reads images written by :func:`corruptions.materialize.materialize`.

Labels are always the base dataset's (corruptions do not move labels; elastic/zoom, which do, are reported as such).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from corruptions.backends.base import CorruptionBackend
from corruptions.suite import check_severity, group_of, image_seed
from repsep.data.base import Sample, SampleDataset, dataset_root
from repsep.errors import UserError


class DatasetView(SampleDataset):
    """The samples ``indices`` of ``base`` (all when None; e.g. :func:`repsep.data.subset.subset_indices`) with the
    dataset contract: view index ``k`` is base index ``indices[k]``.

    ``transform`` starts as the base's and may be replaced; ``class_table``, ``spec`` and ``split`` are the base's.
    """

    def __init__(self, base, indices: Sequence[int] | None = None) -> None:
        self.base = base
        self.indices = list(range(len(base))) if indices is None else [int(i) for i in indices]
        if any(not 0 <= i < len(base) for i in self.indices):
            raise ValueError(f"indices outside 0..{len(base) - 1}")
        self.class_table = base.class_table
        self.spec = base.spec
        self.split = base.split
        self.transform = base.transform

    def __len__(self) -> int:
        return len(self.indices)

    def _index(self, index: int) -> int:
        if not 0 <= index < len(self.indices):
            raise IndexError(f"index {index} out of range for {len(self.indices)} images")
        return self.indices[index]

    def image_id(self, index: int) -> str:
        return self.base.image_id(self._index(index))

    def load(self, index: int) -> Sample:
        """The untransformed sample ``index`` (image uint8 HxWx3 RGB, label int64 HxW, id)."""
        return self.base.load(self._index(index))


class CorruptedDataset(DatasetView):
    """``base`` with every image corrupted by ``backend`` at (``corruption``, ``severity``), labels unchanged."""

    def __init__(self, base, corruption: str, severity: int, backend: CorruptionBackend, base_seed: int = 0,
                 indices: Sequence[int] | None = None, threads: int | None = None) -> None:
        super().__init__(base, indices)
        group_of(corruption)
        if not backend.supports(corruption):
            raise UserError(f"--backend {backend.name}: does not implement {corruption}")
        self.corruption = corruption
        self.severity = check_severity(severity)
        self.backend = backend
        self.base_seed = base_seed
        self.threads = threads  # corruption threads in this process (corruptions.threads.plan); None: unchanged

    def load(self, index: int) -> Sample:
        from corruptions.threads import configure_worker, corruption_threads, in_worker

        sample = super().load(index)
        seed = image_seed(sample["id"], self.corruption, self.severity, self.base_seed)
        if in_worker():
            configure_worker()  # one thread per DataLoader worker (torch and OpenCV)
            image = self.backend.corrupt(sample["image"], self.corruption, self.severity, seed)
        else:
            with corruption_threads(self.threads):
                image = self.backend.corrupt(sample["image"], self.corruption, self.severity, seed)
        return {**sample, "image": image}


def materialized_relpath(base, index: int, root: Path) -> Path:
    """Where image ``index`` lives inside a ``<corruption>/<severity>/`` folder: the base dataset's own relative
    path (e.g. ``leftImg8bit/val/<city>/<stem>_leftImg8bit.png``), always as lossless PNG (ADE20K JPEGs too, so a
    corruption is not compressed twice). ``root`` is :func:`dataset_root` of ``base``.
    """
    return Path(base.images[index]).resolve().relative_to(root).with_suffix(".png")


class FromDiskCorrupted(DatasetView):
    """Corrupted images read from ``tree/<corruption>/<severity>/`` (a materialized tree), labels from ``base``.

    ``tree`` is the tree's :class:`~repsep.ownership.OwnedFolder` (kind ``materialize``); every image is read with
    its recorded sha256 checked, so a file edited or replaced since it was written is one error naming it.
    """

    def __init__(self, base, tree, corruption: str, severity: int, indices: Sequence[int] | None = None) -> None:
        super().__init__(base, indices)
        group_of(corruption)
        self.corruption = corruption
        self.severity = check_severity(severity)
        self.tree = tree
        self.folder = Path(tree.path) / corruption / str(severity)
        if not self.folder.is_dir():
            raise UserError(f"{self.folder}: not found; write it with `repsep-bench corruptions materialize "
                            f"--corruptions {corruption} --severities {severity} --out {tree.path}`")
        self._base_root = dataset_root(base)

    def relpath(self, index: int) -> Path:
        """The image's path relative to the tree root."""
        rel = materialized_relpath(self.base, self._index(index), self._base_root)
        return Path(self.corruption) / str(self.severity) / rel

    def image_path(self, index: int) -> Path:
        return Path(self.tree.path) / self.relpath(index)

    def load(self, index: int) -> Sample:
        from PIL import Image

        sample = super().load(index)
        path = self.image_path(index)
        data = self.tree.read_bytes(self.relpath(index))
        try:
            with Image.open(io.BytesIO(data)) as img:
                image = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except OSError as e:
            raise UserError(f"{path}: unreadable corrupted image ({e})") from None
        if image.shape != sample["image"].shape:
            raise UserError(f"{path}: image is {image.shape[1]}x{image.shape[0]} but the clean image is "
                            f"{sample['image'].shape[1]}x{sample['image'].shape[0]}")
        return {**sample, "image": image}
