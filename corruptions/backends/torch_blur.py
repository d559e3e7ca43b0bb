"""Torch ports of the blur corruptions: gaussian, defocus, motion, zoom and glass blur."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from corruptions.backends import torch_ops as ops
from corruptions.backends.torch_ops import Gens, unit

GAUSSIAN_BLUR = (1, 2, 3, 4, 6)
DEFOCUS_BLUR = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
MOTION_BLUR = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
GLASS_BLUR = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))  # (sigma, max_delta, walks)
ZOOM_BLUR = ((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03))


def gaussian_blur(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # skimage.filters.gaussian(channel_axis=-1): scipy gaussian_filter, mode='nearest', truncate=4.
    # On the CPU OpenCV's separable float32 blur (scipy's taps and borders) took a sixth of the FFT route's time.
    sigma = GAUSSIAN_BLUR[severity - 1]
    if x.device.type == "cpu":
        out = [gaussian_cv2(image.astype(np.float32) * np.float32(1 / 255), sigma)
               for image in x.permute(0, 2, 3, 1).numpy()]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).clamp_(0, 1).mul_(255)
    return ops.gaussian_filter(unit(x), (sigma, sigma), 4.0, "replicate").clamp_(0, 1).mul_(255)


@lru_cache(maxsize=8)
def defocus_kernel(radius: int, alias_blur: float) -> np.ndarray:
    """imagecorruptions' ``disk``: an aliased float32 disk, normalised, then cv2.GaussianBlur (REFLECT_101)."""
    span = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
    ksize = 3 if radius <= 8 else 5
    yy, xx = np.meshgrid(span, span)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    taps = np.exp(-((np.arange(ksize) - (ksize - 1) / 2) ** 2) / (2 * alias_blur ** 2))
    taps /= taps.sum()
    r = ksize // 2
    padded = np.pad(disk.astype(np.float64), r, mode="reflect")  # numpy 'reflect' == REFLECT_101
    rows = sum(taps[i] * padded[i:i + disk.shape[0], :] for i in range(ksize))
    out = sum(taps[i] * rows[:, i:i + disk.shape[1]] for i in range(ksize))
    return out.astype(np.float32)


def defocus_blur(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # cv2.filter2D per channel: correlation anchored at the centre, BORDER_REFLECT_101.
    radius, alias = DEFOCUS_BLUR[severity - 1]
    k = defocus_kernel(radius, alias)
    kernel = torch.from_numpy(k.astype(np.float64)).to(x.device)
    out = ops.correlate(unit(x), kernel, (k.shape[0] // 2, k.shape[1] // 2), "reflect")
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.planes_to_uint8(out, unit_range=True)
    return out.clamp_(0, 1).mul_(255)


def motion_blur_layers(layer: torch.Tensor, radius: int, sigma: float, angles: list[float],
                 keep: tuple[int, int]) -> torch.Tensor:
    """Shift-and-add motion blur of [B, C, H, W] (one angle per image), output cropped to ``keep``."""
    shape = tuple(layer.shape[-2:])
    kernels = [ops.motion_kernel(radius, sigma, a, shape) for a in angles]
    width = kernels[0][1]
    stack = torch.from_numpy(np.stack([k for k, _ in kernels])).to(layer.device)
    return ops.correlate(layer, stack, (width, width), "replicate", out_size=keep)


def motion_blur(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    radius, sigma = MOTION_BLUR[severity - 1]
    angles = [ops.legacy_numpy_rng(g).uniform(-45, 45) for g in gens]  # the package's only draw: its angle
    out = motion_blur_layers(x.float(), radius, sigma, angles, tuple(x.shape[-2:]))
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.planes_to_uint8(out, unit_range=False)
    return out.clamp_(0, 255)


def zoom_blur(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    start, stop, step = ZOOM_BLUR[severity - 1]
    factors = np.arange(start, stop, step)
    keep = tuple(x.shape[-2:])
    # uint8 bilinear is torch's fast CPU path; elsewhere resample in float
    src = x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x.float()
    acc = x.float()
    for z in factors:
        acc += ops.zoom_bilinear(src, float(z), keep)
    return (acc / (255 * (len(factors) + 1))).clamp_(0, 1).mul_(255)


def gaussian_small(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy gaussian_filter (mode='nearest') of [B, C, H, W] float over H and W as separable shift-and-add passes.

    For the small sigmas of glass_blur (radius <= 6) this is faster than the FFT route and needs no padding to a
    fast length; the taps are scipy's (:func:`torch_ops.gaussian_kernel1d`).
    """
    taps = [float(t) for t in ops.gaussian_kernel1d(sigma, truncate)]
    r = len(taps) // 2
    h, w = x.shape[-2:]
    xp = F.pad(x, (r, r, 0, 0), mode="replicate")
    rows = xp[..., 0:w] * taps[0]
    for i in range(1, len(taps)):
        rows.add_(xp[..., i:i + w], alpha=taps[i])
    xp = F.pad(rows, (0, 0, r, r), mode="replicate")
    out = xp[..., 0:h, :] * taps[0]
    for i in range(1, len(taps)):
        out.add_(xp[..., i:i + h, :], alpha=taps[i])
    return out


def gaussian_cv2(image: np.ndarray, sigma: float) -> np.ndarray:
    """skimage/scipy gaussian (radius int(4 sigma + 0.5), mode='nearest') of a float32 [H, W] or [H, W, C] image
    over H and W, by OpenCV: its kernel for that size and sigma has scipy's taps (in float32), and
    BORDER_REPLICATE is scipy's 'nearest'."""
    import cv2

    k = 2 * int(4.0 * sigma + 0.5) + 1
    return cv2.GaussianBlur(image, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def glass_blur(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # skimage gaussian (float64, mode='nearest') -> np.uint8 (truncation) -> the numba pixel walk -> gaussian again.
    # The walk is reproduced exactly from the same seed (corruptions.backends.numba_glass); the blurs run in float32
    # (OpenCV on the CPU, whose taps for this size and sigma are scipy's; separable torch passes elsewhere).
    sigma, max_delta, iterations = GLASS_BLUR[severity - 1]
    b, c, h, w = x.shape
    from corruptions.backends import numba_glass

    indices = [numba_glass.shuffle_index(h, w, max_delta, iterations, g.initial_seed()) for g in gens]
    if ops.cpu_loops(x):
        return numba_glass.glass_blur(x, indices, sigma, gaussian_cv2)
    blurred = gaussian_small(unit(x), sigma).mul_(255).clamp_(0, 255).to(torch.uint8)
    pixels = blurred.permute(0, 2, 3, 1).reshape(b, h * w, c)  # one row of C values per pixel
    walked = torch.stack([pixels[i].index_select(0, torch.from_numpy(index).to(x.device, torch.int64))
                          for i, index in enumerate(indices)])
    walked = walked.view(b, h, w, c).permute(0, 3, 1, 2)
    return gaussian_small(unit(walked), sigma).clamp_(0, 1).mul_(255)
