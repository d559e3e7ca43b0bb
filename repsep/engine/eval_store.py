"""Per-image results of an unfinished ``eval``, kept in its output folder so a rerun continues where it stopped.

The evaluated images (positions ``0..N-1`` of the evaluated index list) are cut into chunks of ``chunk_images``
consecutive positions. After each chunk the results of its images are saved as ``partial/chunk_<k>.npz``, an owned
file (its sha256 is in the folder's marker): ``positions`` int64 [n], ``ids`` str [n], ``areas`` int64 [n, 4, C]
(intersect, union, pred_area, label_area), ``conf`` int64 [C, C] (the chunk's summed confusion) and ``files``, the
sha256 (16 hex) of the chunk's image ids and file sizes. ``partial/state.json`` holds the settings block the
chunks were made with. A rerun reuses a chunk only when its digest (marker), the settings and its own files are
unchanged, so the merged result is exactly that of an uninterrupted run; anything else is one error line.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repsep.errors import UserError
from repsep.ownership import OwnedFolder

STATE = "partial/state.json"
CHUNK = "partial/chunk_{:05d}.npz"


def files_digest(dataset, indices: Sequence[int]) -> str:
    """sha256 (16 hex) of the ids and byte sizes of the image and label files of ``indices`` (no pixel read)."""
    h = hashlib.sha256()
    for i in indices:
        image, label = dataset.images[i], dataset.labels[i]
        try:
            h.update(f"{dataset.ids[i]}|{image.stat().st_size}|{label.stat().st_size}\n".encode())
        except OSError as e:
            raise UserError(f"{e.filename}: cannot read ({e.strerror})") from None
    return h.hexdigest()[:16]


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else f"{prefix.rstrip('.')}: {a} vs {b}"


class PartialResults:
    """The chunks of an unfinished evaluation in ``folder`` (an :class:`OwnedFolder` of kind ``eval``)."""

    def __init__(self, folder: OwnedFolder, state: dict[str, Any]) -> None:
        self.folder = folder
        self.state = state
        self.chunk_images = int(state["chunk_images"])

    @classmethod
    def open(cls, folder: OwnedFolder, state: dict[str, Any]) -> PartialResults:
        """The partial results of ``folder`` when it holds some made with ``state`` (their ``chunk_images`` is
        kept); a fresh, empty record otherwise. UserError when they were made with other settings."""
        if not folder.has(STATE):
            return cls(folder, state)
        old = folder.read_json(STATE)
        if not isinstance(old, dict) or "chunk_images" not in old:
            raise UserError(f"{folder.path / STATE}: not a partial evaluation record; pass --overwrite to start over")
        old = {"precision": "fp32", **old}  # made before precision was recorded: fp32
        diff = _first_difference({k: v for k, v in old.items() if k != "chunk_images"},
                                 {k: v for k, v in state.items() if k != "chunk_images"})
        if diff:
            raise UserError(f"{folder.path}: holds partial eval results made with other settings ({diff}); rerun "
                            "with the same options to continue, or pass --overwrite to start over")
        return cls(folder, {**state, "chunk_images": int(old["chunk_images"])})

    def num_chunks(self, total: int) -> int:
        return -(-total // self.chunk_images)

    def positions(self, k: int, total: int) -> range:
        return range(k * self.chunk_images, min((k + 1) * self.chunk_images, total))

    def load(self, k: int, expected_ids: Sequence[str], files: str) -> dict[str, np.ndarray] | None:
        """Chunk ``k`` when it was saved (digest verified) for exactly these ids and file digest, else None; a
        chunk whose images changed since is an error naming it."""
        rel = CHUNK.format(k)
        if not self.folder.has(rel):
            return None
        path = self.folder.path / rel
        try:
            with np.load(io.BytesIO(self.folder.read_bytes(rel)), allow_pickle=False) as z:
                chunk = {name: z[name] for name in ("positions", "ids", "areas", "conf", "files")}
        except (ValueError, KeyError, OSError) as e:
            raise UserError(f"{path}: unreadable partial result ({e}); pass --overwrite to start over") from None
        if [str(i) for i in chunk["ids"]] != list(expected_ids):
            raise UserError(f"{path}: holds other images than this evaluation's; pass --overwrite to start over")
        if str(chunk["files"]) != files:
            raise UserError(f"{path}: the images or labels it was computed from changed since (sizes differ); "
                            "pass --overwrite to start over")
        return chunk

    def save(self, k: int, positions: Sequence[int], ids: Sequence[str], areas: np.ndarray, conf: np.ndarray,
             files: str) -> None:
        """Save chunk ``k`` (and the state record with the first chunk)."""
        from repsep.io import dumps_json

        if not self.folder.has(STATE):
            write_owned(self.folder, STATE, dumps_json(self.state).encode())
        buffer = io.BytesIO()
        np.savez(buffer, positions=np.asarray(positions, dtype=np.int64), ids=np.asarray(list(ids), dtype=str),
                 areas=np.asarray(areas, dtype=np.int64), conf=np.asarray(conf, dtype=np.int64),
                 files=np.asarray(files))
        write_owned(self.folder, CHUNK.format(k), buffer.getvalue())

    def clear(self) -> None:
        """Remove the partial files (once the final result is written)."""
        for rel in sorted(r for r in self.folder.files if r.startswith("partial/")):
            self.folder.remove(rel)
        partial = self.folder.path / "partial"
        if partial.is_dir() and not any(partial.iterdir()):
            partial.rmdir()


def write_owned(folder: OwnedFolder, rel: str, data: bytes) -> None:
    """``folder.write_bytes`` with OS errors (disk full, permissions) as one error line naming the file (under
    ``folder.shown``, the final folder, when ``folder`` is a staging folder built beside it)."""
    try:
        folder.write_bytes(rel, data)
    except OSError as e:
        shown = Path(getattr(folder, "shown", folder.path))
        raise UserError(f"{shown / rel}: cannot write ({e.strerror or e})") from None
