"""Small helpers shared by the table modules: numbers that may be undefined, dataset labels for notes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from analysis.report.reader import Run, finite
from analysis.tables import UNDEFINED, Value


def number(value: Any, present: bool = True) -> Value:
    """A finite number as float; :data:`UNDEFINED` when ``present`` (the result exists) but the value is NaN or
    null; None (missing) otherwise."""
    got = finite(value)
    if got is not None:
        return got
    return UNDEFINED if present else None


def dataset_note(runs: Iterable[Run | None]) -> str:
    """``"Dataset: synthcity (val)."`` naming every dataset the given results were computed on ("" if none)."""
    names = sorted({d for r in runs if r is not None and (d := r.dataset) is not None})
    if not names:
        return ""
    return f"Dataset{'s' if len(names) > 1 else ''}: {', '.join(names)}. "
