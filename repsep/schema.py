"""A small declarative schema for frozen config dataclasses: per-field ranges and cross-field rules.

Types come from the dataclass annotations (checked by :mod:`repsep.config` and :mod:`repsep.models.config`);
this module adds what annotations cannot say, declared as data next to each class::

    SPECS = {"lr": Spec(gt=0, le=10), "betas": Spec(ge=0, lt=1), "mode": Spec(choices=("whole", "slide"))}
    RULES = [Rule("crop", lambda c: c.crop[0] <= c.scale[0], "must not exceed scale")]

A :class:`Spec` applies to a number, or to every element of a tuple. Every float anywhere in a config must be
finite (NaN and inf are refused for every field, declared or not). :func:`check` raises ``ValueError`` with
``"<prefix><field>: <problem>, got <value>"`` (one line), which the loaders turn into a :class:`UserError`
naming the file or ``--set`` item. Written by hand rather than with pydantic so that the package keeps its small
dependency set; the behaviour (types, ranges, finiteness, cross-field rules, one error naming the key) is the same.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

UINT32_MAX = 2**32 - 1
"""Largest seed numpy's legacy ``np.random.seed`` and most RNGs accept."""
MAX_PIXELS = 16384
"""Largest image side (pixels) a size in a config or option may have."""


@dataclass(frozen=True)
class Spec:
    """Bounds of a number (or of each element of a tuple), allowed values, tuple length and order."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None
    min_len: int | None = None
    max_len: int | None = None
    increasing: bool = False
    """Tuple elements strictly increasing (and hence distinct)."""

    def describe(self) -> str:
        """The bounds as an interval, ``"must be in (0, 10]"``, or one bound, ``"must be >= 0"``."""
        low = (self.ge, "[", ">=") if self.ge is not None else (self.gt, "(", ">") if self.gt is not None else None
        high = (self.le, "]", "<=") if self.le is not None else (self.lt, ")", "<") if self.lt is not None else None
        if low and high:
            return f"must be in {low[1]}{_num(low[0])}, {_num(high[0])}{high[1]}"
        bound = low or high
        return f"must be {bound[2]} {_num(bound[0])}" if bound else "is out of range"

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (None when it satisfies the spec)."""
        items = value if isinstance(value, tuple) else (value,)
        if isinstance(value, tuple):
            if self.min_len is not None and len(value) < self.min_len:
                return f"needs at least {self.min_len} value{'s' if self.min_len > 1 else ''}"
            if self.max_len is not None and len(value) > self.max_len:
                return f"takes at most {self.max_len} values"
            if self.increasing and any(b <= a for a, b in zip(value[:-1], value[1:], strict=True)):
                return "must be strictly increasing"
        for x in items:
            if x is None:
                continue
            if self.choices is not None and x not in self.choices:
                return f"must be one of {', '.join(map(str, self.choices))}"
            if not isinstance(x, (int, float)) or isinstance(x, bool):
                continue
            if ((self.ge is not None and not x >= self.ge) or (self.gt is not None and not x > self.gt)
                    or (self.le is not None and not x <= self.le) or (self.lt is not None and not x < self.lt)):
                return self.describe()
        return None


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: ``holds(obj)`` must be true, else ``"<field>: <message>"``."""

    field: str
    holds: Callable[[Any], bool]
    message: str


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def non_finite(value: Any) -> bool:
    """Whether ``value`` is, or is a tuple containing, a NaN or infinite float."""
    items = value if isinstance(value, tuple) else (value,)
    return any(isinstance(x, float) and not math.isfinite(x) for x in items)


def check(obj: Any, specs: Mapping[str, Spec], rules: Iterable[Rule] = (), prefix: str = "") -> None:
    """Validate dataclass instance ``obj``: every float field finite, every spec, then every rule, in order."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if non_finite(value):
            raise ValueError(f"{prefix}{f.name}: must be a finite number, got {_show(value)}")
        if isinstance(value, str) and any(ord(c) < 32 for c in value):
            raise ValueError(f"{prefix}{f.name}: must not contain control characters, got {value!r}")
        spec = specs.get(f.name)
        problem = spec.problem(value) if spec is not None else None
        if problem:
            raise ValueError(f"{prefix}{f.name}: {problem}, got {_show(value)}")
    for rule in rules:
        if not rule.holds(obj):
            raise ValueError(f"{prefix}{rule.field}: {rule.message}")
