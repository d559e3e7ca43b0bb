"""Corruption backends: ``reference`` (imagecorruptions, numpy) and ``torch`` (batched ports)."""

from corruptions.backends.base import CorruptionBackend
from corruptions.backends.registry import BACKENDS, backend_for, get_backend

__all__ = ["BACKENDS", "CorruptionBackend", "backend_for", "get_backend"]
