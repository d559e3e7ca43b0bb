"""The ownership rule: a command deletes or replaces only files it can prove it wrote.

Every output folder a command writes holds a marker, ``.repsep-bench.json``: the command's *kind* (train, eval,
corrupt, shift, analyze, report, materialize, predictions, study, gpu_check), whether the result is finished, and
every file the command wrote with its sha256. The marker is the proof of ownership and the integrity record at once:

- :meth:`OwnedFolder.claim` checks a folder before any work starts. A folder that is ``/``, the home folder, a
  dataset root or an input of the same command is refused; a folder holding a file no marker lists (a *foreign*
  file) is refused, naming the first one; a finished result is refused unless ``overwrite`` (or ``resume``); a
  result of another kind is refused always. Sub-folders with a marker of their own (``eval/`` inside a training
  run) are other results: left alone, neither foreign nor replaced.
- :meth:`OwnedFolder.write_bytes` & co. write atomically and record the digest; :meth:`OwnedFolder.read_bytes`
  checks it, so a hand-edited file is one error line naming it.
- :func:`replace_result` prepares a replacement in a hidden sibling folder and swaps it in only after it
  succeeded: the old result survives a failed ``--overwrite``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from repsep.errors import UserError
from repsep.io import atomic_open, dumps_json, temp_sibling_dir
from repsep.manifest import sha256_bytes, sha256_file

MARKER = ".repsep-bench.json"
"""File name of the ownership marker inside every output folder."""

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")
"""A temporary of :func:`repsep.io.atomic_open` (``tempfile.mkstemp``): ``.<final name>.<8 random>.tmp``."""

DATASET_ROOT_ENTRIES = ("leftImg8bit", "gtFine", "rgb_anon", "ADEChallengeData2016", "synthcity.json",
                        "leftImg8bit_foggy", "leftImg8bit_rain", "rgb_anon_trainvaltest", "gt_trainval", "VOC2010",
                        "JPEGImages", "SegmentationClassContext", "fixture_meta.json")
"""Entries whose presence makes a folder a dataset root (Cityscapes, ACDC, Dark Zurich, ADE20K, SynthCity, Foggy /
Rain Cityscapes, Pascal Context, the layout fixtures; COCO-Stuff by its images/ + annotations/)."""


def is_dataset_root(path: Path) -> bool:
    if any((path / name).exists() for name in DATASET_ROOT_ENTRIES):
        return True
    return (path / "images").is_dir() and (path / "annotations").is_dir()  # ADEChallengeData2016 itself


def refuse_protected(out: Path, *, inputs: Iterable[str | os.PathLike] = (), what: str = "--out") -> None:
    """UserError when ``out`` is ``/``, the home folder, a dataset root, an input of the command, or a folder
    that contains one of the inputs (writing there could replace them)."""
    resolved = out.expanduser().resolve()
    if resolved == Path(resolved.anchor):
        raise UserError(f"{what} {out}: refusing to write into the file system root")
    if resolved == Path.home().resolve():
        raise UserError(f"{what} {out}: refusing to write into the home folder; choose a sub-folder")
    if resolved.is_dir() and is_dataset_root(resolved):
        raise UserError(f"{what} {out}: is a dataset root; choose a folder outside the dataset")
    for item in inputs:
        source = Path(item).expanduser().resolve()
        if source == resolved or (resolved in source.parents and resolved.is_dir()
                                  and not _inside_owned_subresult(resolved, source)):
            raise UserError(f"{what} {out}: is an input of this command ({item}); choose another folder")


def _inside_owned_subresult(folder: Path, source: Path) -> bool:
    """Whether ``source`` lies in a sub-folder of ``folder`` that is a result of its own (has a marker)."""
    for parent in source.parents:
        if parent == folder:
            return False
        if (parent / MARKER).is_file():
            return True
    return False


def _read_marker(path: Path) -> dict[str, Any] | None:
    marker = path / MARKER
    if not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{marker}: unreadable ownership marker ({e})") from None
    if not (isinstance(data, dict) and isinstance(data.get("kind"), str) and isinstance(data.get("files"), dict)):
        raise UserError(f"{marker}: not a repsep-bench ownership marker")
    return data


def _walk_files(root: Path) -> Iterator[Path]:
    """Files under ``root`` (sorted, relative), not descending into sub-folders that hold a marker of their own."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (here / d / MARKER).is_file())
        for name in sorted(filenames):
            rel = (here / name).relative_to(root)
            if rel.as_posix() != MARKER:
                yield rel


class OwnedFolder:
    """An output folder of one command ``kind`` and the record of the files it wrote (relative POSIX paths)."""

    def __init__(self, path: str | os.PathLike, kind: str, files: dict[str, str] | None = None,
                 finished: bool = False, pending: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.kind = kind
        self.files: dict[str, str] = dict(files or {})
        self.finished = finished
        #: files being written: their new digest is saved before the rename, so a kill between the rename and
        #: the record leaves a file the marker still vouches for (see :meth:`_settle_pending`)
        self.pending: dict[str, str] = dict(pending or {})

    def _settle_pending(self) -> None:
        """A pending file whose content has its pending digest was renamed into place: record it; drop the rest."""
        for key, digest in sorted(self.pending.items()):
            target = self.path / key
            if target.is_file() and sha256_file(target) == digest:
                self.files[key] = digest
        self.pending.clear()

    # ---- claiming ------------------------------------------------------------------------------------------

    @classmethod
    def claim(cls, path: str | os.PathLike, kind: str, *, overwrite: bool = False, resume: bool = False,
              inputs: Iterable[str | os.PathLike] = (), what: str = "--out", create: bool = True) -> OwnedFolder:
        """Check ``path`` for ``kind`` (see the module docstring) and return its record; creates the folder and
        its marker when ``create``. ``resume`` accepts an unfinished or finished result of the same kind."""
        path = Path(path)
        refuse_protected(path, inputs=inputs, what=what)
        if path.exists() and not path.is_dir():
            raise UserError(f"{what} {path}: exists and is not a folder")
        marker = _read_marker(path) if path.is_dir() else None
        if marker is not None and marker["kind"] != kind:
            raise UserError(f"{what} {path}: holds a repsep-bench {marker['kind']} result, not {kind}; "
                            "choose another folder")
        owned = cls(path, kind, marker["files"] if marker else {}, bool(marker and marker.get("finished")),
                    marker.get("pending") if marker and isinstance(marker.get("pending"), dict) else None)
        owned._settle_pending()
        if path.is_dir():
            foreign = owned.foreign_files()
            if foreign:
                raise UserError(f"{what} {path}: holds {foreign[0]}, which repsep-bench {kind} did not write; "
                                "choose an empty or new folder")
        if owned.finished and not (overwrite or resume):
            raise UserError(f"{what} {path}: already holds a finished {kind} result; pass --overwrite to "
                            "replace it or choose another folder")
        if create:
            owned.create()
        return owned

    def create(self) -> None:
        """Make the folder (and parents) and write the marker if there is none yet."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{self.path}: cannot create the output folder ({e.strerror or e})") from None
        if not (self.path / MARKER).is_file():
            self._save_marker()

    def foreign_files(self) -> list[Path]:
        """Files in the folder that the marker does not list (sorted; nested results with a marker skipped).

        A temporary file that an atomic write of a recorded file (or of the marker) left behind when the process
        was killed (``.NAME.XXXXXXXX.tmp`` beside ``NAME``) is not foreign; it is left alone."""
        return [rel for rel in _walk_files(self.path) if rel.as_posix() not in self.files
                and not self._own_temporary(rel)]

    def _own_temporary(self, rel: Path) -> bool:
        m = _TEMP_NAME.match(rel.name)
        if m is None:
            return False
        base = (rel.parent / m.group(1)).as_posix()
        return (m.group(1) == MARKER and rel.parent == Path(".")) or base in self.files or base in self.pending

    # ---- writing ----------------------------------------------------------------------------------------------

    def _save_marker(self) -> None:
        record = {"kind": self.kind, "finished": self.finished, "files": dict(sorted(self.files.items()))}
        if self.pending:
            record["pending"] = dict(sorted(self.pending.items()))
        with atomic_open(self.path / MARKER, "w") as f:
            f.write(dumps_json(record))

    def record(self, rel: str | os.PathLike, digest: str | None = None) -> None:
        """Record a file the command wrote (digest computed when not given) and save the marker."""
        rel_path = Path(rel)
        self.files[rel_path.as_posix()] = digest or sha256_file(self.path / rel_path)
        self._save_marker()

    def _check_writable(self, rel: str | os.PathLike) -> Path:
        target = self.path / rel
        key = Path(rel).as_posix()
        if target.exists() and key not in self.files:
            raise UserError(f"{target}: exists and was not written by repsep-bench {self.kind}; refusing to "
                            "replace it")
        return target

    def record_many(self, digests: dict[str, str]) -> None:
        """Record many files at once (relative POSIX path -> sha256) and save the marker once."""
        self.files.update(digests)
        self._save_marker()

    def write_bytes(self, rel: str | os.PathLike, data: bytes) -> None:
        target = self._check_writable(rel)
        key, digest = Path(rel).as_posix(), sha256_bytes(data)
        self.pending[key] = digest
        self._save_marker()
        with atomic_open(target, "wb") as f:
            f.write(data)
        self.pending.pop(key, None)
        self.record(rel, digest)

    def write_text(self, rel: str | os.PathLike, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))

    def write_json(self, rel: str | os.PathLike, obj: Any) -> None:
        self.write_text(rel, dumps_json(obj))

    def save(self, rel: str | os.PathLike, writer: Callable[[IO[bytes]], None]) -> None:
        """Atomically write a binary file produced by ``writer(file_object)`` (torch.save, PIL.save) and record it."""
        target = self._check_writable(rel)
        key = Path(rel).as_posix()
        with atomic_open(target, "wb") as f:
            writer(f)
            f.flush()
            digest = _sha256_fd(f.fileno())
            self.pending[key] = digest  # recorded before the rename (a kill after it keeps the file owned)
            self._save_marker()
        self.pending.pop(key, None)
        self.record(rel, digest)

    def finish(self) -> None:
        """Mark the result finished (write this last)."""
        self.finished = True
        self._save_marker()

    def unfinish(self) -> None:
        self.finished = False
        self._save_marker()

    # ---- reading back --------------------------------------------------------------------------------------

    def read_bytes(self, rel: str | os.PathLike) -> bytes:
        """A recorded file's bytes; UserError naming it when it is missing, unrecorded or edited since written."""
        target = self.path / rel
        key = Path(rel).as_posix()
        if key not in self.files:
            raise UserError(f"{target}: not recorded in {self.path / MARKER}; it was not written by this "
                            f"{self.kind} result")
        try:
            data = target.read_bytes()
        except OSError as e:
            raise UserError(f"{target}: cannot read ({e.strerror or e})") from None
        if sha256_bytes(data) != self.files[key]:
            raise UserError(f"{target}: content differs from what repsep-bench {self.kind} wrote (sha256 "
                            f"mismatch with {MARKER}); delete it to recompute")
        return data

    def read_json(self, rel: str | os.PathLike) -> Any:
        target = self.path / rel
        try:
            return json.loads(self.read_bytes(rel).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"{target}: not valid JSON ({e})") from None

    def has(self, rel: str | os.PathLike) -> bool:
        return Path(rel).as_posix() in self.files and (self.path / rel).is_file()

    # ---- removing --------------------------------------------------------------------------------------------

    def remove(self, rel: str | os.PathLike) -> None:
        """Delete one recorded file (never an unrecorded one)."""
        key = Path(rel).as_posix()
        if key not in self.files:
            raise UserError(f"{self.path / rel}: not written by repsep-bench {self.kind}; refusing to delete it")
        with suppress(FileNotFoundError):
            (self.path / rel).unlink()
        del self.files[key]
        self._save_marker()

    def remove_all(self) -> None:
        """Delete every recorded file and then empty sub-folders the command made; keep the marker."""
        for key in sorted(self.files, reverse=True):
            with suppress(FileNotFoundError):
                (self.path / key).unlink()
        self.files.clear()
        self.finished = False
        self._save_marker()
        _remove_empty_dirs(self.path)


def _sha256_fd(fd: int, chunk: int = 1 << 20) -> str:
    """sha256 of an open file's whole content (read with pread: the file position is not moved)."""
    import hashlib

    h, offset = hashlib.sha256(), 0
    while block := os.pread(fd, chunk, offset):
        h.update(block)
        offset += len(block)
    return h.hexdigest()


@contextmanager
def lock_folder(path: str | os.PathLike, busy: str) -> Iterator[int]:
    """Hold an exclusive ``flock`` on the existing folder ``path`` for the block; yields the locked descriptor
    (child processes given it keep the lock after this process closes it). Held elsewhere: UserError
    ``"PATH: <busy>"``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{path}: {busy}") from None
        yield fd
    finally:
        os.close(fd)  # closing, not LOCK_UN: processes that inherited the descriptor keep the lock


def remove_stale_temporaries(path: str | os.PathLike, kind: str) -> list[Path]:
    """Delete the temporaries a killed ``kind`` command left in its folder ``path``, and nothing else.

    Only files named like :func:`repsep.io.atomic_open`'s temporaries of a file the folder's marker lists (or of
    the marker itself) are deleted; any other file, ``.x.tmp`` included, is kept (and is then a foreign file).
    Returns the deleted paths. A folder without a marker, or with another kind's, is left alone. Call it before
    :meth:`OwnedFolder.claim` when resuming (a temporary is otherwise a foreign file).
    """
    root = Path(path)
    marker = _read_marker(root) if root.is_dir() else None
    if marker is None or marker["kind"] != kind:
        return []
    owned = {*marker["files"], MARKER}
    removed = []
    for rel in list(_walk_files(root)):
        match = _TEMP_NAME.match(rel.name)
        if match and (rel.parent / match["name"]).as_posix() in owned and rel.as_posix() not in owned:
            with suppress(FileNotFoundError):
                (root / rel).unlink()
            removed.append(root / rel)
    return removed


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirnames, _filenames in sorted(os.walk(root), key=lambda t: -len(t[0])):
        here = Path(dirpath)
        if here != root and not any(here.iterdir()):
            with suppress(OSError):
                here.rmdir()


@contextmanager
def replace_result(out: str | os.PathLike, kind: str, *, overwrite: bool = False,
                   inputs: Iterable[str | os.PathLike] = (), what: str = "--out") -> Iterator[OwnedFolder]:
    """Build a result of ``kind`` beside ``out`` and swap it in only after the block succeeds.

    ``out`` is claimed first (all the checks of :meth:`OwnedFolder.claim`, nothing created). The block writes
    into the yielded staging folder (a hidden sibling); on success the old result's recorded files are deleted,
    the new files moved in and the marker written finished. On failure (or Ctrl-C / SIGTERM) the staging folder
    is removed and ``out`` is exactly as it was.
    """
    out = Path(out)
    target = OwnedFolder.claim(out, kind, overwrite=overwrite, inputs=inputs, what=what, create=False)
    staging = OwnedFolder(temp_sibling_dir(out), kind)
    staging.create()
    try:
        yield staging
        target = OwnedFolder.claim(out, kind, overwrite=overwrite, inputs=inputs, what=what, create=True)
        target.remove_all()
        for key, digest in sorted(staging.files.items()):
            dest = out / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging.path / key, dest)
            target.files[key] = digest
        target.finished = True
        target._save_marker()
    except UserError as e:  # name the file where it would have landed, not its staging copy
        raise UserError(str(e).replace(str(staging.path), str(out))) from None
    except OSError as e:
        raise UserError(f"{out}: cannot write the result ({e.strerror or e})") from None
    finally:
        shutil.rmtree(staging.path, ignore_errors=True)
