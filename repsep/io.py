"""Atomic file output: write to a temporary file in the same folder, fsync, then rename.

A reader never sees a half-written file under its final name, and an interrupted write leaves the previous
version (if any) intact.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from repsep.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success rename it onto ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        where = path if e.errno == errno.ENAMETOOLONG else path.parent
        raise UserError(f"{where}: cannot write here ({e.strerror or e})") from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the permissions open() would
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):  # the write itself failed: disk full, quota ...
            raise UserError(f"{path}: cannot write ({e.strerror or e}); the previous file, if any, is kept") from None
        if isinstance(e, RuntimeError) and any(s in str(e) for s in _TORCH_WRITE_FAILED):
            raise UserError(f"{path}: cannot write (the write failed; is the disk full?); the previous file, if any, "
                            "is kept") from None
        raise


_TORCH_WRITE_FAILED = ("unexpected pos", "PytorchStreamWriter failed", "file write failed")
"""What torch.save's zip writer says (as a RuntimeError) when the underlying write fails, e.g. on a full disk."""


def refuse_finished_output(out: str | os.PathLike, overwrite: bool, marker: str = "manifest.json") -> None:
    """UserError when ``out`` already holds a finished result (its ``marker``, written last, exists), unless
    ``overwrite``. Commands call this before computing anything, so a refused run changes no file."""
    out = Path(out)
    if not overwrite and (out / marker).exists():
        raise UserError(f"{out}: already holds a finished result ({marker}); pass --overwrite to replace it "
                        "or choose another --out")


def make_output_dir(out: str | os.PathLike) -> Path:
    """Create the output folder ``out`` (and parents); a path that cannot be a folder is a UserError."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    return out


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_save(path: str | os.PathLike, writer: Callable[[IO[bytes]], None]) -> None:
    """Atomically write a binary file produced by ``writer(file_object)`` (e.g. ``torch.save``, ``PIL.save``)."""
    with atomic_open(path, "wb") as f:
        writer(f)


def json_safe(obj: Any) -> Any:
    """NaN/inf become null so the JSON is strict; numpy scalars and tuples become plain types."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps_json(obj: Any) -> str:
    """Deterministic, strict JSON (sorted keys, NaN -> null, trailing newline)."""
    return json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """An uncompressed ``.npz`` (readable by ``np.load``, no pickles) with fixed zip timestamps, so the same arrays
    always give the same bytes (``np.savez`` stamps the current time)."""
    import numpy as np

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            array_bytes = io.BytesIO()
            np.lib.format.write_array(array_bytes, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), array_bytes.getvalue())
    return buffer.getvalue()


def atomic_write_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> None:
    """Atomically write :func:`npz_bytes` of ``arrays``."""
    atomic_write_bytes(path, npz_bytes(arrays))


def temp_sibling_dir(out: str | os.PathLike) -> Path:
    """A new empty hidden folder beside ``out`` (same file system), to build a result in and rename onto ``out``."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise UserError(f"{out.parent}: cannot write here ({e.strerror or e})") from None


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file's content; a missing or unreadable file is a :class:`UserError` naming it."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or malformed file is a :class:`UserError` naming it."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
