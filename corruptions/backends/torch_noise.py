"""Torch ports of the noise corruptions: gaussian, shot, impulse and speckle noise (per-image torch generators)."""

from __future__ import annotations

import torch

from corruptions.backends import torch_ops as ops
from corruptions.backends.torch_ops import Gens, unit

GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_NOISE = (60, 25, 12, 5, 3)
IMPULSE_NOISE = (0.03, 0.06, 0.09, 0.17, 0.27)
SPECKLE_NOISE = (0.15, 0.2, 0.35, 0.45, 0.6)


def gaussian_noise(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    c = GAUSSIAN_NOISE[severity - 1]
    noise = ops.normal(gens, x.shape[1:], 0.0, c, x.device)
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.gaussian_noise(x, noise)
    return unit(x).add_(noise).clamp_(0, 1).mul_(255)


def shot_noise(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    c = SHOT_NOISE[severity - 1]
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        cdf, guess = ops.poisson_tables(float(c), c)
        u = ops.uniform(gens, x.shape[1:], 0.0, 1.0, x.device)  # the draw poisson_capped makes
        return numba_kernels.shot_noise(x, u, guess, cdf, c, ops.POISSON_BINS)
    return ops.poisson_capped(gens, x, c, c).mul_(255 / c)  # counts above c clip to white in the package


def impulse_noise(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # skimage random_noise('s&p', amount=c, salt_vs_pepper=0.5): each element flips with p = c, half to 1, half to 0.
    c = IMPULSE_NOISE[severity - 1]
    # On uint8 directly: equal to the float arithmetic, as x / 255 * 255 truncates back to x for every grey level.
    u = ops.uniform(gens, x.shape[1:], 0.0, 1.0, x.device)
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.impulse_noise(x, u, c)
    return x.masked_fill(u < c, 0).masked_fill_(u < c * 0.5, 255)


def speckle_noise(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    c = SPECKLE_NOISE[severity - 1]
    noise = ops.normal(gens, x.shape[1:], 0.0, c, x.device)
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.speckle_noise(x, noise)
    xf = unit(x)
    return xf.add_(xf * noise).clamp_(0, 1).mul_(255)  # not addcmul_: its fused multiply-add rounds differently
