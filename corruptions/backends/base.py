"""The corruption backend interface and the plain dict of named backends.

A backend turns a clean RGB uint8 image into its corrupted version for one (corruption, severity) with an
explicit per-image seed: the same (image, corruption, severity, seed) gives the same pixels on every call,
whatever ran before it and in whichever process. Backends: ``reference`` (the ``imagecorruptions`` package,
numpy on CPU) and ``torch`` (batched torch ports, any device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from repsep.errors import UserError

if TYPE_CHECKING:
    import torch


class CorruptionBackend:
    """Base class: subclasses set ``name`` and implement :meth:`supports` and :meth:`corrupt`.

    ``corrupt_batch`` defaults to a loop over :meth:`corrupt`; batched backends override it.
    """

    name: str = "base"

    def supports(self, corruption: str) -> bool:
        """Whether this backend implements ``corruption`` (a name from :mod:`corruptions.suite`)."""
        raise NotImplementedError

    def corrupt(self, image: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
        """Corrupt one image.

        Args:
            image: uint8 [H, W, 3] RGB.
            corruption: corruption name.
            severity: 1..5.
            seed: uint32 seed; the output depends only on (image, corruption, severity, seed).

        Returns:
            uint8 [H, W, 3], the input's shape.
        """
        raise NotImplementedError

    def corrupt_batch(self, images: torch.Tensor, corruption: str, severity: int, seeds: list[int]) -> torch.Tensor:
        """Corrupt a batch: ``images`` uint8 [B, H, W, 3] on any device, one seed per image.

        Returns uint8 [B, H, W, 3] on the input's device; image ``b`` equals ``corrupt(images[b], ..., seeds[b])``
        for backends whose batched path is exact.
        """
        import torch

        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 [B, H, W, 3], got {images.dtype} {tuple(images.shape)}")
        if len(seeds) != images.shape[0]:
            raise ValueError(f"{len(seeds)} seeds for a batch of {images.shape[0]} images")
        out = [torch.from_numpy(self.corrupt(img, corruption, severity, seed))
               for img, seed in zip(images.cpu().numpy(), seeds, strict=True)]
        return torch.stack(out).to(images.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def backend_for(backend: CorruptionBackend, corruption: str) -> CorruptionBackend:
    """The backend that produces ``corruption``: ``backend`` itself, or the reference one where it has no port."""
    return backend if backend.supports(corruption) else get_backend("reference")


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
