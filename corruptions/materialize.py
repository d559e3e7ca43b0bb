"""Write corrupted copies of a dataset to disk: ``OUT/<corruption>/<severity>/<the base dataset's own layout>``.

Images are PNG (lossless; ADE20K's JPEGs too, so jpeg_compression is not applied on top of a second encoding).
Labels are not copied: they are the base dataset's. The tree is an owned folder of kind ``materialize``
(:mod:`repsep.ownership`): its marker lists every file with its sha256, and ``settings.json`` records what made it
(dataset fingerprint, split, image ids, base seed, backend, and the finished (corruption, severity) cells), so
``corrupt --from-disk`` can refuse a tree made from another dataset or seed and a hand-edited image.

Every file is written atomically (temporary sibling + rename) and listed in the marker before it is written, so an
interrupted run leaves only finished files under final names; a rerun with the same settings deletes only its own
stale temporaries, skips the finished files and produces the same tree as an uninterrupted run (pixels depend only
on the image id, corruption, severity and base seed). A rerun with another dataset, seed or backend is refused
unless ``overwrite``: then the new tree is built beside the old one and swapped in when it is complete.
Work is spread over DataLoader worker processes, one job per base image (decoded once for all its cells).
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from corruptions.backends import CorruptionBackend, backend_for
from corruptions.cells import discard_when_nothing_done
from corruptions.dataset import dataset_root, materialized_relpath
from corruptions.suite import image_seed
from corruptions.threads import ENV as THREADS_ENV
from corruptions.threads import configure_worker, corruption_threads, in_worker, parse_override
from corruptions.threads import plan as plan_threads
from repsep.comparability import first_difference
from repsep.errors import UserError
from repsep.io import atomic_save
from repsep.manifest import build_manifest, sha256_file
from repsep.ownership import OwnedFolder, remove_stale_temporaries, replace_result
from repsep.progress import progress_bar

KIND = "materialize"
SETTINGS = "settings.json"
PENDING = "pending"
"""The marker's digest of a file planned but not yet written (a killed run's files are adopted on resume)."""
IDENTITY = ("dataset_fingerprint", "split", "image_ids_sha256", "base_seed", "backend")
"""Settings a rerun into the same tree must share (else it would mix images of two protocols)."""
SAVE_EVERY_S = 2.0


def ids_sha256(ids: Sequence[str]) -> str:
    """sha256 hex of ``"\\n".join(sorted(ids))`` (the settings block's ``image_ids_sha256``)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 image as PNG bytes (fixed settings, so the bytes depend only on the pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def write_png(path: Path, image: np.ndarray) -> str:
    """Atomically write an RGB uint8 image as PNG; returns its sha256."""
    data = png_bytes(image)
    atomic_save(path, lambda f: f.write(data))
    return hashlib.sha256(data).hexdigest()


def tree_settings(base, backend: CorruptionBackend, base_seed: int) -> dict[str, Any]:
    """The identity of a tree made from ``base`` by ``backend`` with ``base_seed`` (no cells yet)."""
    ids = [base.image_id(i) for i in range(len(base))]
    return {"dataset": base.spec, "dataset_fingerprint": base.fingerprint(), "split": base.split,
            "image_ids": ids, "image_ids_sha256": ids_sha256(ids), "num_images": len(ids), "base_seed": base_seed,
            "backend": backend.name, "format": "png", "cells": {}, "corruptions": [], "severities": [],
            "backend_per_corruption": {},
            "layout": "<corruption>/<severity>/<path of the clean image relative to the dataset root, as .png>"}


class _ImageJobs(Dataset):
    """Job ``i``: corrupt base image ``i`` for every (corruption, severity) file not in ``done``; returns counts and
    the sha256 of every file written."""

    def __init__(self, base, out: Path, cells: Sequence[tuple[str, int]], backend: CorruptionBackend,
                 base_seed: int, done: frozenset[str]) -> None:
        self.base, self.out, self.cells, self.backend, self.base_seed = base, out, list(cells), backend, base_seed
        self.root = dataset_root(base)
        self.done = done
        self.threads: int | None = None  # in this process (workers=0): corruptions.threads.plan("process")

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rel = materialized_relpath(self.base, index, self.root)
        todo = [(c, s) for c, s in self.cells if f"{c}/{s}/{rel.as_posix()}" not in self.done]
        digests = {}
        if todo:
            if in_worker():
                configure_worker()  # one thread per DataLoader worker (torch and OpenCV)
            sample = self.base.load(index)
            for c, s in todo:
                seed = image_seed(sample["id"], c, s, self.base_seed)
                with corruption_threads(None if in_worker() else self.threads):
                    image = backend_for(self.backend, c).corrupt(sample["image"], c, s, seed)
                key = f"{c}/{s}/{rel.as_posix()}"
                try:
                    digests[key] = write_png(self.out / key, image)
                except OSError as e:
                    raise UserError(f"{self.out / key}: cannot write ({e.strerror or e})") from None
        return {"written": len(todo), "skipped": len(self.cells) - len(todo), "digests": digests}


def _relpaths(base) -> list[str]:
    root = dataset_root(base)
    rels = [materialized_relpath(base, i, root).as_posix() for i in range(len(base))]
    seen: dict[str, int] = {}
    for i, rel in enumerate(rels):
        if rel.lower() in seen:  # e.g. a.png and a.PNG: the same file on a case-insensitive disk
            raise UserError(f"{base.images[i]}: same materialized name as {base.images[seen[rel.lower()]]} "
                            f"({rel}); rename one")
        seen[rel.lower()] = i
    return rels


def _fill(owned: OwnedFolder, base, cells: list[tuple[str, int]], backend: CorruptionBackend, settings: dict,
          *, workers: int, progress: bool | None) -> dict[str, int]:
    """Write the missing files of ``cells`` into ``owned`` (planned in its marker first), then finish it."""
    rels = _relpaths(base)
    planned = {f"{c}/{s}/{rel}": PENDING for c, s in cells for rel in rels}
    # a killed run's files: planned, written (atomically, so complete) but not yet recorded: adopt them
    adopt = {k: sha256_file(owned.path / k) for k, v in owned.files.items()
             if v == PENDING and k in planned and (owned.path / k).is_file()}
    owned.record_many({**{k: v for k, v in planned.items() if k not in owned.files}, **adopt})
    owned.write_json(SETTINGS, settings)  # identity first; cells are added when they are complete
    done = frozenset(k for k, v in owned.files.items() if v != PENDING and (owned.path / k).is_file())
    jobs = _ImageJobs(base, owned.path, cells, backend, settings["base_seed"], done)
    if workers == 0:
        jobs.threads = plan_threads("process", ranks=1)[0]
    loader = DataLoader(jobs, batch_size=None, shuffle=False, num_workers=workers)
    counts = {"written": 0, "skipped": 0}
    pending: dict[str, str] = {}
    last = time.monotonic()
    try:
        with progress_bar(total=len(jobs) * len(cells), wanted=progress, desc="materialize", unit="img") as bar:
            for result in loader:
                for key in counts:
                    counts[key] += int(result[key])
                pending.update(result["digests"])
                if time.monotonic() - last > SAVE_EVERY_S:
                    owned.record_many(pending)
                    pending, last = {}, time.monotonic()
                bar.update(int(result["written"]) + int(result["skipped"]))
    finally:
        if pending:
            owned.record_many(pending)
    for c, s in cells:
        settings["cells"].setdefault(c, [])
        settings["cells"][c] = sorted({*settings["cells"][c], s})
        settings["backend_per_corruption"][c] = backend_for(backend, c).name
    settings["cells"] = dict(sorted(settings["cells"].items()))
    settings["corruptions"] = list(settings["cells"])
    settings["severities"] = sorted({s for levels in settings["cells"].values() for s in levels})
    settings["backend_per_corruption"] = dict(sorted(settings["backend_per_corruption"].items()))
    owned.write_json(SETTINGS, settings)
    config = {k: v for k, v in settings.items() if k != "image_ids"}
    owned.write_json("manifest.json", build_manifest(KIND, seeds={"base_seed": settings["base_seed"]},
                                                     config=config, inputs={"config": config}))
    owned.finish()
    return counts


def materialize(base, corruptions: Sequence[str], severities: Sequence[int], out: str | Path,
                backend: CorruptionBackend, *, base_seed: int = 0, workers: int = 0, overwrite: bool = False,
                progress: bool | None = None) -> dict[str, int]:
    """Write every (corruption, severity) version of every image of ``base`` under ``out``; skip finished files.

    Args:
        base: a file-based dataset (Cityscapes, ADE20K, SynthCity), untransformed.
        backend: the corruption backend (``supports`` every corruption).
        workers: DataLoader worker processes (0 = in this process).
        overwrite: replace a tree made with other settings (built beside, swapped in when complete).

    Returns:
        ``{"written": files written now, "skipped": files that already existed}``.
    """
    out = Path(out)
    parse_override(os.environ.get(THREADS_ENV))  # a bad REPSEP_CORRUPT_THREADS is one line before any work
    inputs = [dataset_root(base)]
    remove_stale_temporaries(out, KIND)  # only this command's own, named after a file its marker lists
    owned = OwnedFolder.claim(out, KIND, overwrite=overwrite, resume=True, inputs=inputs, create=False)
    new = tree_settings(base, backend, base_seed)
    cells = [(c, s) for c in corruptions for s in severities]
    old = owned.read_json(SETTINGS) if owned.has(SETTINGS) else None
    difference = first_difference(old, new, IDENTITY) if old is not None else None
    if difference is None:
        if old is not None:  # same tree: keep the cells it already has
            new["cells"], new["backend_per_corruption"] = old.get("cells", {}), old.get("backend_per_corruption", {})
        fresh = not out.exists()
        owned.create()
        owned.unfinish()
        with discard_when_nothing_done(owned, fresh, (SETTINGS,)):
            return _fill(owned, base, cells, backend, new, workers=workers, progress=progress)
    if not overwrite:
        raise UserError(f"--out {out}: holds a tree made with other settings ({difference}); pass --overwrite to "
                        "replace it or choose another folder")
    with replace_result(out, KIND, overwrite=True, inputs=inputs) as staging:
        counts = _fill(staging, base, cells, backend, new, workers=workers, progress=progress)
    return counts


def open_tree(root: str | Path) -> tuple[OwnedFolder, dict[str, Any]]:
    """A materialized tree for reading (``corrupt --from-disk``): its owned folder and ``settings.json``."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--from-disk {root}: folder not found; write it with `repsep-bench corruptions materialize`")
    tree = OwnedFolder.claim(root, KIND, resume=True, what="--from-disk", create=False)
    if not tree.has(SETTINGS):
        raise UserError(f"--from-disk {root}: no {SETTINGS}; not a tree written by `repsep-bench corruptions "
                        "materialize` (or an older one: write it again)")
    return tree, tree.read_json(SETTINGS)


def check_tree(root: str | Path, settings: dict[str, Any], base, ids: Sequence[str], base_seed: int,
               cells: Sequence[tuple[str, int]]) -> None:
    """UserError naming the first field in which the tree ``settings`` does not fit a sweep of ``cells`` on the
    images ``ids`` of ``base`` with ``base_seed``."""
    want = {"dataset_fingerprint": base.fingerprint(), "split": base.split, "base_seed": base_seed}
    difference = first_difference(settings, want, tuple(want))
    if difference is not None:
        raise UserError(f"--from-disk {root}: made from another dataset or seed than this run ({difference})")
    missing = sorted(set(ids) - set(settings.get("image_ids", [])))
    if missing:
        raise UserError(f"--from-disk {root}: has no images for {len(missing)} of the evaluated ids (e.g. "
                        f"{missing[0]})")
    for c, s in cells:
        if s not in settings.get("cells", {}).get(c, []):
            raise UserError(f"--from-disk {root}: has no finished {c} severity {s}; write it with `repsep-bench "
                            f"corruptions materialize --corruptions {c} --severities {s} --out {root}`")
