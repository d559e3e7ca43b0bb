"""The corruption backend interface (the registry of named backends is :mod:`corruptions.backends.registry`).

A backend turns a clean RGB uint8 image into its corrupted version for one (corruption, severity) with an
explicit per-image seed: the same (image, corruption, severity, seed) gives the same pixels on every call,
whatever ran before it and in whichever process. Backends: ``reference`` (the ``imagecorruptions`` package,
numpy on CPU) and ``torch`` (batched torch ports, any device).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

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
