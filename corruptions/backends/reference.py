"""The reference backend: the ``imagecorruptions`` functions (PyPI ``imagecorruptions-imaug``), made deterministic.

Determinism per call: the package draws from NumPy's legacy global RNG, except ``impulse_noise`` (scikit-image's
``random_noise`` with its own ``default_rng``) and ``glass_blur`` (numba's RNG). This backend seeds the legacy
RNG with the per-image seed right before each call (saving and restoring the caller's global state) and passes
the same seed to ``impulse_noise`` and ``glass_blur`` through their ``seed=`` argument, so the output depends
only on (image, corruption, severity, seed), not on call order, process or worker count.

Sizes: images of any size >= 32x32 are corrupted at their own size (no resizing). Absolute-pixel parameters
(blur radii, noise strength) are the ImageNet-C ones; fog, frost and elastic adapt to the size. For images
smaller than a frost texture the texture is cropped at its native resolution (x1.1), as in ImageNet-C.
"""

from __future__ import annotations

import numpy as np

from corruptions.backends.base import CorruptionBackend
from corruptions.suite import ALL_CORRUPTIONS, check_severity
from repsep.errors import UserError

# These take an explicit seed= because they do not draw from NumPy's legacy global RNG.
_SEEDED_KWARG = frozenset({"impulse_noise", "glass_blur"})
MIN_SIDE = 32  # imagecorruptions refuses smaller images


class ReferenceBackend(CorruptionBackend):
    """``imagecorruptions.corrupt`` on one RGB uint8 image at a time, seeded per call."""

    name = "reference"

    def supports(self, corruption: str) -> bool:
        return corruption in ALL_CORRUPTIONS

    def corrupt(self, image: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
        from imagecorruptions import corrupt

        if not self.supports(corruption):
            raise UserError(f"corruption {corruption!r}: not supported by the reference backend")
        check_severity(severity)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 [H, W, 3] RGB image, got {image.dtype} {image.shape}")
        if min(image.shape[:2]) < MIN_SIDE:
            raise UserError(f"corruption {corruption}: images must be at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                            f"got {image.shape[0]}x{image.shape[1]}")
        kwargs = {"seed": seed} if corruption in _SEEDED_KWARG else {}
        state = np.random.get_state()
        try:
            np.random.seed(seed)
            out = corrupt(np.ascontiguousarray(image), severity=severity, corruption_name=corruption, **kwargs)
        finally:
            np.random.set_state(state)
        if out.shape != image.shape:  # the package returns the input's size for every corruption; keep it so
            raise RuntimeError(f"{corruption} s{severity}: output {out.shape} != input {image.shape}")
        return out
