"""Write corrupted copies of a dataset to disk: ``OUT/<corruption>/<severity>/<the base dataset's own layout>``.

Images are PNG (lossless; ADE20K's JPEGs too, so jpeg_compression is not applied on top of a second encoding).
Labels are not copied: they are the base dataset's. Every file is written atomically (temporary sibling +
rename), so an interrupted run leaves only finished files under final names; a rerun skips them and produces the
same tree as an uninterrupted run (pixels depend only on the image id, corruption, severity and base seed).
Work is spread over DataLoader worker processes, one job per base image (decoded once for all its cells).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from corruptions.backends import CorruptionBackend, backend_for
from corruptions.dataset import dataset_root, materialized_relpath
from corruptions.suite import image_seed
from repsep.io import atomic_save, atomic_write_json
from repsep.manifest import build_manifest


def write_png(path: Path, image: np.ndarray) -> None:
    """Atomically write an RGB uint8 image as PNG (fixed settings, so the bytes depend only on the pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=6)
    atomic_save(path, lambda f: f.write(buffer.getvalue()))


class _ImageJobs(Dataset):
    """Job ``i``: corrupt base image ``i`` for every missing (corruption, severity) file; returns counts."""

    def __init__(self, base, out: Path, cells: Sequence[tuple[str, int]], backend: CorruptionBackend,
                 base_seed: int) -> None:
        self.base, self.out, self.cells, self.backend, self.base_seed = base, out, list(cells), backend, base_seed
        self.root = dataset_root(base)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, int]:
        rel = materialized_relpath(self.base, index, self.root)
        todo = [(c, s) for c, s in self.cells if not (self.out / c / str(s) / rel).is_file()]
        if todo:
            sample = self.base.load(index)
            for c, s in todo:
                seed = image_seed(sample["id"], c, s, self.base_seed)
                image = backend_for(self.backend, c).corrupt(sample["image"], c, s, seed)
                write_png(self.out / c / str(s) / rel, image)
        return {"written": len(todo), "skipped": len(self.cells) - len(todo)}


def materialize(base, corruptions: Sequence[str], severities: Sequence[int], out: str | Path,
                backend: CorruptionBackend, *, base_seed: int = 0, workers: int = 0,
                progress: bool | None = None) -> dict[str, int]:
    """Write every (corruption, severity) version of every image of ``base`` under ``out``; skip finished files.

    Args:
        base: a file-based dataset (Cityscapes, ADE20K, SynthCity), untransformed.
        backend: the corruption backend (``supports`` every corruption).
        workers: DataLoader worker processes (0 = in this process).

    Returns:
        ``{"written": files written now, "skipped": files that already existed}``.
    """
    from tqdm import tqdm

    out = Path(out)
    for stale in out.rglob(".*.tmp"):  # temporaries of a killed run (never under a final name)
        stale.unlink()
    cells = [(c, s) for c in corruptions for s in severities]
    jobs = _ImageJobs(base, out, cells, backend, base_seed)
    loader = DataLoader(jobs, batch_size=None, shuffle=False, num_workers=workers)
    counts = {"written": 0, "skipped": 0}
    with tqdm(total=len(jobs) * len(cells), desc="materialize", unit="img", disable=progress is False,
              dynamic_ncols=True) as bar:
        for done in loader:
            for key in counts:
                counts[key] += int(done[key])
            bar.update(int(done["written"]) + int(done["skipped"]))
    config = {"dataset": base.spec, "split": base.split, "num_images": len(base), "corruptions": list(corruptions),
              "severities": list(severities), "format": "png",
              "backend_per_corruption": {c: backend_for(backend, c).name for c in corruptions},
              "layout": "<corruption>/<severity>/<path of the clean image relative to the dataset root, as .png>"}
    atomic_write_json(out / "manifest.json", build_manifest("materialize", seeds={"base_seed": base_seed},
                                                            config=config, inputs={"config": config}))
    return counts
