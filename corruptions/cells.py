"""The cells of a ``corrupt`` sweep on disk: ``OUT/cells/<cell>.pt``, each with the settings that made it.

A cell file holds the confusion matrix ``conf`` (int64 [C, C]), the image ``ids`` and per-image ``areas`` (int64
[N, 4]: intersect, union, pred_area, label_area, each per class [N, 4, C]) and ``key``: the JSON of everything that
determines its numbers (model sha256, dataset fingerprint, split, image ids, base seed, the backend that really
corrupted it, precision, inference settings). The output folder's marker records each file's sha256, so a cell
edited by hand is one error naming it; a cell made with other settings is refused naming the differing fields.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repsep.errors import UserError
from repsep.ownership import MARKER, OwnedFolder

CLEAN = ("clean", 0)
AREAS = ("intersect", "union", "pred_area", "label_area")
PENDING = "pending"
"""The marker's digest of a cell planned but not yet written (a killed run's finished cell is adopted on resume)."""


def cell_name(cell: tuple[str, int]) -> str:
    return "clean" if cell == CLEAN else f"{cell[0]}-{cell[1]}"


def cell_rel(cell: tuple[str, int]) -> str:
    """The cell file's path inside the output folder."""
    return f"cells/{cell_name(cell)}.pt"


def cell_key(settings: dict[str, Any], cell: tuple[str, int], backend: str) -> dict[str, Any]:
    """What a saved cell must match to be reused: the sweep's ``settings`` block fields that change a cell's
    numbers (not the worker count, world size, ``corrupt_on``, batch or cache size), the cell and ``backend``
    (what really corrupted it, e.g. ``torch:cuda``)."""
    return {"model_sha256": settings["model_sha256"], "dataset_fingerprint": settings["dataset_fingerprint"],
            "split": settings["split"], "image_ids_sha256": settings["image_ids_sha256"],
            "base_seed": settings["base_seed"], "precision": settings["precision"],
            "inference": settings["inference"], "cell": cell_name(cell), "backend": backend}


def _decode(data: bytes, path: Path) -> dict[str, Any]:
    try:
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        saved["key_dict"] = json.loads(saved["key"])
    except Exception as e:  # a corrupt cache file is bad input, not a crash
        raise UserError(f"{path}: unreadable saved cell ({e}); delete it to recompute") from None
    return saved


def differing_fields(saved_key: dict[str, Any], key: dict[str, Any]) -> list[str]:
    return sorted(k for k in key if saved_key.get(k) != key[k])


def load_cell(folder: OwnedFolder, cell: tuple[str, int], key: dict[str, Any]) -> dict[str, Any]:
    """A recorded cell (sha256 checked); UserError naming it when edited or made with other settings."""
    rel = cell_rel(cell)
    saved = _decode(folder.read_bytes(rel), folder.path / rel)
    diff = differing_fields(saved["key_dict"], key)
    if diff:
        raise UserError(f"{folder.path / rel}: saved by a different run (differs in {', '.join(diff)}); pass "
                        "--overwrite to recompute it or choose another --out")
    return saved


def mismatch(folder: OwnedFolder, cell: tuple[str, int], key: dict[str, Any]) -> str | None:
    """The error line for a recorded cell made with other settings (None when it fits or is absent/pending);
    an edited or unreadable cell raises."""
    rel = cell_rel(cell)
    if not folder.has(rel) or folder.files[rel] == PENDING:
        return None
    saved = _decode(folder.read_bytes(rel), folder.path / rel)
    diff = differing_fields(saved["key_dict"], key)
    if not diff:
        return None
    return (f"{folder.path / rel}: saved by a different run (differs in {', '.join(diff)}); pass --overwrite to "
            "recompute it or choose another --out")


def plan(folder: OwnedFolder, keys: dict[tuple[str, int], dict[str, Any]]) -> list[tuple[str, int]]:
    """List every cell of ``keys`` in the marker before computing (pending), adopt a killed run's finished but
    unrecorded cells, and return the cells already done (recorded, fitting their key)."""
    from repsep.manifest import sha256_file

    digests: dict[str, str] = {}
    for cell, key in keys.items():
        rel = cell_rel(cell)
        if rel not in folder.files:
            digests[rel] = PENDING
        elif folder.files[rel] == PENDING and (folder.path / rel).is_file():
            path = folder.path / rel
            try:
                saved = _decode(path.read_bytes(), path)
            except (OSError, UserError):
                continue
            if not differing_fields(saved["key_dict"], key):
                digests[rel] = sha256_file(path)  # written atomically, so complete
    folder.record_many(digests)
    return [cell for cell in keys if folder.has(cell_rel(cell)) and folder.files[cell_rel(cell)] != PENDING]


def save_cell(folder: OwnedFolder, cell: tuple[str, int], key: dict[str, Any], evaluator) -> None:
    """Write a finished cell (atomically, recorded with its sha256); disk full is one error naming the file."""
    per_image = evaluator.per_image()
    data = {"key": json.dumps(key, sort_keys=True), "conf": evaluator.conf.clone(),
            "ids": [str(i) for i in per_image["ids"]],
            "areas": torch.from_numpy(np.stack([per_image[a] for a in AREAS], axis=1))}
    buffer = io.BytesIO()
    torch.save(data, buffer)
    write_bytes(folder, cell_rel(cell), buffer.getvalue())


@contextmanager
def discard_when_nothing_done(folder: OwnedFolder | None, fresh: bool, bookkeeping: tuple[str, ...] = ()
                              ) -> Iterator[None]:
    """If the block fails before any result file of a ``fresh`` (new) ``folder`` exists, remove what the command
    made there (its marker, the ``bookkeeping`` files, empty sub-folders, the folder): a bad input found by the
    first image leaves nothing behind. Once one result exists, everything is kept for a rerun to continue."""
    try:
        yield
    except BaseException:
        if folder is not None and fresh and folder.path.is_dir():
            results = [k for k in folder.files if k not in bookkeeping and (folder.path / k).exists()]
            if not results and not folder.foreign_files():
                for key in bookkeeping:
                    with suppress(FileNotFoundError):
                        (folder.path / key).unlink()
                with suppress(FileNotFoundError):
                    (folder.path / MARKER).unlink()
                for dirpath, _dirs, _files in sorted(os.walk(folder.path), key=lambda t: -len(t[0])):
                    with suppress(OSError):
                        Path(dirpath).rmdir()
        raise


def write_bytes(folder: OwnedFolder, rel: str, data: bytes) -> None:
    """:meth:`OwnedFolder.write_bytes`, an OS error (disk full, read-only) as one error line naming the file."""
    try:
        folder.write_bytes(rel, data)
    except OSError as e:
        raise UserError(f"{folder.path / rel}: cannot write ({e.strerror or e}); the cells finished so far are "
                        "kept, rerun to continue") from None
