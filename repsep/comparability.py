"""Whether two results may be compared: their ``settings`` blocks, field by field.

Every eval / corrupt / analyze result records a ``settings`` block (dataset fingerprint, split, sha256 of the
evaluated image ids, inference options, precision; corrupt also the base seed, severities and the backend that
made each cell). Two results are comparable on ``fields`` when every listed field is equal; ``cell_backends`` is
compared cell by cell over the cells both hold, ``inference`` option by option; a field missing from an older
result takes its :data:`DEFAULTS` value (``precision``: fp32). Pure functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

EVAL_FIELDS = ("dataset_fingerprint", "split", "image_ids_sha256", "inference", "precision")
"""What two evaluations must share to be compared (same images, same inference)."""

CORRUPT_FIELDS = (*EVAL_FIELDS, "base_seed", "severities", "cell_backends")
"""What two robustness sweeps (or a sweep and its CE reference) must share: also the same corrupted pixels."""

DEFAULTS = {"precision": "fp32"}
"""The value of a field that a result made before the field existed lacks (it was made that way)."""

NO_SETTINGS = "no settings recorded (made by an older version); rerun it"
_MISSING = object()


def has_settings(settings: Any) -> bool:
    """Whether ``settings`` is a settings block (a dict with at least a dataset fingerprint)."""
    return isinstance(settings, Mapping) and "dataset_fingerprint" in settings


def _plain(value: Any) -> Any:
    """JSON-normal form (tuples -> lists) so that values read from JSON and built in memory compare equal."""
    return value if value is _MISSING else json.loads(json.dumps(value, sort_keys=True, default=str))


def _show(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def differences(a: Mapping[str, Any], b: Mapping[str, Any], fields: Sequence[str]) -> list[str]:
    """Every difference between settings ``a`` and ``b`` on ``fields``, in field order, as ``"field: A vs B"``
    (``"cell_backends[fog/3]: torch vs reference"``, ``"inference.crop: [512,512] vs [64,64]"``)."""
    out = []
    for name in fields:
        default = DEFAULTS.get(name, _MISSING)
        va, vb = _plain(a.get(name, default)), _plain(b.get(name, default))
        if name in ("cell_backends", "inference") and isinstance(va, dict) and isinstance(vb, dict):
            keys = sorted(set(va) & set(vb)) if name == "cell_backends" else sorted(set(va) | set(vb))
            fmt = "{}[{}]" if name == "cell_backends" else "{}.{}"
            out += [f"{fmt.format(name, k)}: {_show(va.get(k, _MISSING))} vs {_show(vb.get(k, _MISSING))}"
                    for k in keys if va.get(k, _MISSING) != vb.get(k, _MISSING)]
        elif va != vb:
            out.append(f"{name}: {_show(va)} vs {_show(vb)}")
    return out


def first_difference(a: Mapping[str, Any], b: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    """The first of :func:`differences`, or None when ``a`` and ``b`` agree on every field."""
    found = differences(a, b, fields)
    return found[0] if found else None
