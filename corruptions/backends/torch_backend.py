"""The torch backend: batched ports of the ``imagecorruptions`` functions, on CPU or GPU.

Each port follows the package's arithmetic (same parameters, border modes, kernels, truncation to uint8) on a
whole batch at once. Deterministic corruptions match the reference within 2 grey levels per pixel, and so do
frost and motion_blur, whose few random scalars (texture, crop, angle) are drawn from NumPy's legacy RNG seeded as
the reference seeds it, and glass_blur, whose pixel walk replays numba's random stream exactly. The other random
ones draw from one ``torch.Generator`` per image (seeded with the image's seed, on the tensor's device), so they match
the reference in distribution, not pixel for pixel; an image's output never depends on its batch.

Ported: all 19. The ports live by group in torch_noise, torch_blur, torch_weather and torch_digital; on the CPU their
elementwise parts and glass_blur's walk run as numba loops (numba_kernels, numba_glass) equal to the torch path.
pixelate and jpeg_compression call Pillow per image on CPU (the package's own C routines, faster
than any port there; pixelate has an exact integer torch path for other devices); spatter's water drops run the
package's OpenCV Canny / distance-transform chain per image on CPU (its layers are then composited on the device).
:meth:`TorchBackend.backend_for` says which backend produces a corruption (every one is "torch" now; the reference
fallback stays for backends or names without a port).

Reconstruction notes (where the port differs in form, not in result):
    brightness/saturate: rgb2hsv -> edit V or S -> hsv2rgb is computed in closed form (with H and S fixed the RGB
    channels are linear in V; with H and V fixed, v - channel is proportional to S), which is exact algebra.
    zoom_blur on CPU resamples each zoom layer with torch's uint8 bilinear kernel (rounded layers, averaged).
    shot_noise samples Poisson counts by inverse CDF, capped at the level where the package clips to white.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from corruptions.backends import torch_ops as ops
from corruptions.backends.base import CorruptionBackend
from corruptions.backends.torch_blur import defocus_blur, gaussian_blur, glass_blur, motion_blur, zoom_blur
from corruptions.backends.torch_digital import (
    brightness,
    contrast,
    elastic_transform,
    jpeg_compression,
    pixelate,
    saturate,
)
from corruptions.backends.torch_noise import gaussian_noise, impulse_noise, shot_noise, speckle_noise
from corruptions.backends.torch_ops import Gens
from corruptions.backends.torch_weather import fog, frost, snow, spatter
from corruptions.suite import check_severity, group_of
from repsep.errors import UserError

MIN_SIDE = 32  # the reference refuses smaller images; the ports keep the same contract

Port = Callable[[torch.Tensor, int, Gens], torch.Tensor]
PORTS: dict[str, Port] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "speckle_noise": speckle_noise, "gaussian_blur": gaussian_blur, "defocus_blur": defocus_blur,
    "motion_blur": motion_blur, "zoom_blur": zoom_blur, "snow": snow, "frost": frost, "fog": fog,
    "brightness": brightness, "contrast": contrast, "saturate": saturate, "elastic_transform": elastic_transform,
    "pixelate": pixelate, "jpeg_compression": jpeg_compression, "glass_blur": glass_blur, "spatter": spatter,
}
# Ports that match the reference pixel for pixel (within 2 grey levels) given the same seed: the deterministic
# corruptions, and frost and motion_blur, whose only random draws (texture, crop, angle) come from NumPy's legacy RNG
# seeded as the reference seeds it. The others draw from torch generators and match the reference in distribution.
DETERMINISTIC: frozenset[str] = frozenset({
    "gaussian_blur", "defocus_blur", "zoom_blur", "brightness", "contrast", "saturate", "pixelate",
    "jpeg_compression", "frost", "motion_blur", "glass_blur",
})


class TorchBackend(CorruptionBackend):
    """Batched torch ports on any device; a corruption without a port falls back to the reference backend.

    Args:
        device: where to compute; None computes on the input's device (``corrupt`` on numpy input: CPU).
        cpu_batch: images per call of a port on the CPU (other devices take the whole batch). 1 by default: at
            1024x2048 a batch of two took 1.6x longer per image than single images (a float image is 25 MB; two
            no longer stay in cache). The pixels do not depend on it (one generator per image).
    """

    name = "torch"

    def __init__(self, device: str | torch.device | None = None, cpu_batch: int = 1):
        if cpu_batch < 1:
            raise ValueError(f"cpu_batch must be >= 1, got {cpu_batch}")
        self.device = torch.device(device) if device is not None else None
        self.cpu_batch = cpu_batch
        self._reference: CorruptionBackend | None = None

    def supports(self, corruption: str) -> bool:
        """True for corruptions with a native torch port (others still work, through the reference backend)."""
        return corruption in PORTS

    def backend_for(self, corruption: str) -> str:
        """'torch' or 'reference': which backend produces ``corruption``'s pixels."""
        group_of(corruption)  # UserError for an unknown name
        return self.name if self.supports(corruption) else self.reference.name

    @property
    def reference(self) -> CorruptionBackend:
        if self._reference is None:
            from corruptions.backends.reference import ReferenceBackend

            self._reference = ReferenceBackend()
        return self._reference

    def corrupt(self, image: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 [H, W, 3] RGB image, got {image.dtype} {image.shape}")
        batch = torch.from_numpy(np.require(image, requirements=("C", "W")))[None]  # copies a read-only array
        out = self.corrupt_batch(batch, corruption, severity, [seed])
        return out[0].numpy()

    def corrupt_batch(self, images: torch.Tensor, corruption: str, severity: int, seeds: list[int]) -> torch.Tensor:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 [B, H, W, 3], got {images.dtype} {tuple(images.shape)}")
        if len(seeds) != images.shape[0]:
            raise ValueError(f"{len(seeds)} seeds for a batch of {images.shape[0]} images")
        check_severity(severity)
        if not self.supports(corruption):
            group_of(corruption)
            return self.reference.corrupt_batch(images, corruption, severity, seeds)
        if min(images.shape[1:3]) < MIN_SIDE:
            raise UserError(f"corruption {corruption}: images must be at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                            f"got {images.shape[1]}x{images.shape[2]}")
        device = self.device or images.device
        if device.type == "cpu" and images.shape[0] > self.cpu_batch:
            return torch.cat([self.corrupt_batch(images[b:b + self.cpu_batch], corruption, severity,
                                                 seeds[b:b + self.cpu_batch])
                              for b in range(0, images.shape[0], self.cpu_batch)])
        x = images.to(device).permute(0, 3, 1, 2)  # [B, 3, H, W] in channels_last memory: no copy
        out = PORTS[corruption](x, severity, ops.generators(seeds, device))
        if out.dtype != torch.uint8:
            out = out.to(torch.uint8)  # values are in [0, 255]: truncation, as np.uint8 in the package
        return out.permute(0, 2, 3, 1).contiguous().to(images.device)
