"""Corruption suite: names, backends, corrupted datasets, materialisation, robustness metrics, scoring of
external predictions; :func:`evaluate_model` runs the sweep on any torch module."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:  # lazy: `import corruptions` stays cheap (no torch import)
    if name in ("evaluate_model", "module_model", "module_sha256"):
        from corruptions import entry

        return getattr(entry, name)
    raise AttributeError(f"module 'corruptions' has no attribute {name!r}")
