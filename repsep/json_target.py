"""``--json FILE`` targets under the ownership rule: a file is replaced only when the same command wrote it.

Every such JSON object carries ``"written_by": "repsep-bench <command>"``, its proof of ownership.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from repsep.errors import UserError
from repsep.io import atomic_open, dumps_json
from repsep.ownership import is_dataset_root

WRITTEN_BY = "written_by"
"""Top-level key of every JSON file a ``--json FILE`` option writes: ``"repsep-bench <command>"``, its proof of
ownership (a file without it, or written by another command, is never replaced)."""


def check_json_target(path: str | os.PathLike, command: str, *, inputs: Iterable[str | os.PathLike] = (),
                      what: str = "--json") -> Path:
    """UserError naming ``path`` unless :func:`write_json_target` may write it: refused are a folder, a file inside a
    dataset root, an input of the command, and an existing file that is not JSON carrying ``"written_by":
    "repsep-bench <command>"`` (only a previous output of the same command is replaced). Call it before the work."""
    target = Path(path)
    owner = f"repsep-bench {command}"
    resolved = target.expanduser().resolve()
    if target.is_dir() or resolved == Path(resolved.anchor):
        raise UserError(f"{what} {target}: is a folder; give a file name, e.g. {target / 'out.json'}")
    for item in inputs:
        if Path(item).expanduser().resolve() == resolved:
            raise UserError(f"{what} {target}: is an input of this command ({item}); choose another file")
    for parent in resolved.parents:
        if parent.is_dir() and is_dataset_root(parent):
            raise UserError(f"{what} {target}: is inside the dataset root {parent}; choose a file outside it")
    if target.exists() or target.is_symlink():
        try:
            previous = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            previous = None
        if not (isinstance(previous, dict) and previous.get(WRITTEN_BY) == owner):
            raise UserError(f"{what} {target}: exists and was not written by {owner}; refusing to replace it "
                            "(delete it or choose another file)")
    return target


def write_json_target(path: str | os.PathLike, obj: dict[str, Any], command: str, *,
                      inputs: Iterable[str | os.PathLike] = (), what: str = "--json") -> None:
    """Atomically write the JSON object ``obj`` plus ``"written_by": "repsep-bench <command>"`` to ``path``, after
    the checks of :func:`check_json_target`. Callers wrap lists (``{"models": [...]}``)."""
    if not isinstance(obj, dict):
        raise TypeError("write_json_target writes a JSON object; wrap lists in a dict")
    target = check_json_target(path, command, inputs=inputs, what=what)
    with atomic_open(target, "w") as f:
        f.write(dumps_json({**obj, WRITTEN_BY: f"repsep-bench {command}"}))
