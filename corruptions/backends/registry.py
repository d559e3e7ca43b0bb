"""The named corruption backends (``reference``, ``torch``) and the choice of backend per corruption.

Kept apart from :mod:`corruptions.backends.base` so that the interface module imports no backend and the
backends import only the interface (no import circle).
"""

from __future__ import annotations

from collections.abc import Callable

from corruptions.backends.base import CorruptionBackend
from repsep.errors import UserError


def _reference(**kwargs) -> CorruptionBackend:
    from corruptions.backends.reference import ReferenceBackend

    return ReferenceBackend(**kwargs)


def _torch(**kwargs) -> CorruptionBackend:
    from corruptions.backends.torch_backend import TorchBackend

    return TorchBackend(**kwargs)


# Named factories; each imports its module on first use, so the torch backend costs nothing until asked for.
BACKENDS: dict[str, Callable[..., CorruptionBackend]] = {"reference": _reference, "torch": _torch}


def get_backend(name: str, **kwargs) -> CorruptionBackend:
    """A backend by name (``reference`` or ``torch``); ``kwargs`` go to its constructor (e.g. ``device``)."""
    if name not in BACKENDS:
        raise UserError(f"--backend {name!r}: unknown backend; choose from: {', '.join(BACKENDS)}")
    try:
        return BACKENDS[name](**kwargs)
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("corruptions.backends"):
            raise
        raise UserError(f"--backend {name!r}: its module {e.name} is not available in this installation") from None


def backend_for(backend: CorruptionBackend, corruption: str) -> CorruptionBackend:
    """The backend that produces ``corruption``: ``backend`` itself, or the reference one where it has no port."""
    return backend if backend.supports(corruption) else get_backend("reference")
