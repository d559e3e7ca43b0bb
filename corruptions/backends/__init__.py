"""Corruption backends: ``reference`` (imagecorruptions, numpy) and ``torch`` (batched ports)."""

from corruptions.backends.base import BACKENDS, CorruptionBackend, get_backend

__all__ = ["BACKENDS", "CorruptionBackend", "get_backend"]
