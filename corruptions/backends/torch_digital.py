"""Torch ports of the digital corruptions: brightness, saturate, contrast, elastic_transform, pixelate, jpeg."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from io import BytesIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from corruptions.backends import torch_ops as ops
from corruptions.backends.torch_ops import Gens, unit

BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))
ELASTIC_ALPHA = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
JPEG_QUALITY = (25, 18, 15, 10, 7)


def brightness(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # HSV V += c (clipped): with H and S fixed, RGB scales with V; a black pixel becomes grey (c, c, c).
    c = BRIGHTNESS[severity - 1]
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.brightness(x, c)
    xf = unit(x)
    v = xf.amax(dim=1, keepdim=True)
    v_new = (v + c).clamp_(max=1)
    out = torch.where(v > 0, xf * (v_new / v.clamp(min=1e-12)), v_new)
    return out.clamp_(0, 1).mul_(255)


def saturate(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # HSV S -> clip(S * a + b): with H and V fixed, v - channel scales with S. Grey pixels (S = 0, H = 0) become
    # (v, v (1 - S'), v (1 - S')), as skimage's hsv2rgb gives for hue 0.
    a, b = SATURATE[severity - 1]
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.saturate(x, a, b)
    xf = unit(x)
    v = xf.amax(dim=1, keepdim=True)
    delta = v - xf.amin(dim=1, keepdim=True)
    s = torch.where(delta > 0, delta / v.clamp(min=1e-12), 0.0)
    s_new = (s * a + b).clamp_(0, 1)
    coloured = v - (v - xf) * (s_new / s.clamp(min=1e-12))
    grey = torch.cat([v, v * (1 - s_new), v * (1 - s_new)], dim=1)
    return torch.where(delta > 0, coloured, grey).clamp_(0, 1).mul_(255)


def contrast(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    c = CONTRAST[severity - 1]
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.contrast(x, numba_kernels.channel_means(x), c)
    xf = unit(x)
    means = xf.mean(dim=(2, 3), keepdim=True, dtype=torch.float64).float()
    return xf.sub_(means).mul_(c).add_(means).clamp_(0, 1).mul_(255)


def elastic_transform(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # Displacements: U(-0.005 H, 0.005 H) smoothed by skimage gaussian(sigma=0.01 (H, W), mode='reflect',
    # truncate=3) times alpha; sampling: map_coordinates(order=1, mode='reflect') == grid_sample(bilinear,
    # reflection, align_corners=False) in pixel units.
    alpha = ELASTIC_ALPHA[severity - 1]
    h, w = x.shape[-2:]
    max_d = h * 0.005
    fields = ops.uniform(gens, (2, h, w), -max_d, max_d, x.device)  # dx first, as the package draws it
    disp = ops.gaussian_filter(fields, (h * 0.01, w * 0.01), 3.0, "symmetric") * alpha
    ys = torch.arange(h, device=x.device, dtype=torch.float32)[:, None] + disp[:, 1]
    xs = torch.arange(w, device=x.device, dtype=torch.float32)[None, :] + disp[:, 0]
    grid = torch.stack([(2 * xs + 1) / w - 1, (2 * ys + 1) / h - 1], dim=-1)
    out = F.grid_sample(unit(x), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.clamp_(0, 1).mul_(255)


@lru_cache(maxsize=32)
def _box_plan(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """PIL's BOX-filter bounds for one axis: first and last+1 input pixel of each output pixel, fixed-point weight.

    Mirrors Pillow's ``precompute_coeffs`` (box_filter: -0.5 < t <= 0.5) and ``normalize_coeffs_8bpc``; all
    taps of one output pixel are equal, so each output is (2^21 + weight * sum) >> 22.
    """
    scale = in_size / out_size
    support = 0.5 * max(scale, 1.0)
    lo, hi, weights = [], [], []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        inside = [i for i in range(xmin, xmax) if -0.5 < (i - center + 0.5) / max(scale, 1.0) <= 0.5]
        lo.append(inside[0])
        hi.append(inside[-1] + 1)
        weights.append(int(0.5 + (1.0 / len(inside)) * (1 << 22)))
    return np.array(lo), np.array(hi), np.array(weights)


def _box_reduce(x: torch.Tensor, out_size: int, dim: int) -> torch.Tensor:
    """PIL BOX downsampling of uint8-valued int32 ``x`` along ``dim`` (exact integer arithmetic, rounded)."""
    lo, hi, weights = (torch.from_numpy(a).to(x.device) for a in _box_plan(x.shape[dim], out_size))
    shape = [1] * x.ndim
    shape[dim] = out_size
    csum = x.cumsum(dim, dtype=torch.int32)
    total = csum.index_select(dim, hi - 1) - csum.index_select(dim, (lo - 1).clamp(min=0)) * (lo > 0).view(shape)
    return (total * weights.int().view(shape) + (1 << 21)) >> 22


@lru_cache(maxsize=32)
def _nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """PIL NEAREST resize source index per output pixel (Geometry.c affine walk: x0 = a/2, x += a each step)."""
    a = in_size / out_size
    coords = np.cumsum(np.concatenate([[a * 0.5], np.full(out_size - 1, a)]))
    return np.minimum(coords.astype(np.int64), in_size - 1)


def _per_image_pil(x: torch.Tensor, fn: Callable[[Image.Image], Image.Image]) -> torch.Tensor:
    """Apply a PIL operation to each image of a CPU batch [B, 3, H, W] (uint8 RGB); returns [B, 3, H, W] uint8."""
    nhwc = x.permute(0, 2, 3, 1).numpy()
    out = np.stack([np.asarray(fn(Image.fromarray(np.ascontiguousarray(img)))) for img in nhwc])
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def pixelate_torch(x: torch.Tensor, severity: int) -> torch.Tensor:
    """PIL's BOX downscale then NEAREST upscale in exact integer torch arithmetic (any device)."""
    c = PIXELATE[severity - 1]
    h, w = x.shape[-2:]
    small = _box_reduce(_box_reduce(x.int(), int(w * c), dim=3), int(h * c), dim=2)  # PIL: horizontal first
    small = small.clamp_(0, 255).to(torch.uint8)
    rows = torch.from_numpy(_nearest_index(small.shape[2], h)).to(x.device)
    cols = torch.from_numpy(_nearest_index(small.shape[3], w)).to(x.device)
    return small.index_select(2, rows).index_select(3, cols)


def pixelate(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # On CPU, Pillow itself (the package's own operation, a single C call) is the fastest exact route.
    if x.device.type != "cpu":
        return pixelate_torch(x, severity)
    c = PIXELATE[severity - 1]
    h, w = x.shape[-2:]
    return _per_image_pil(x, lambda im: im.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.NEAREST))


def jpeg_compression(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # Pillow's libjpeg codec on CPU, as the package (quality scale, 4:2:0 subsampling); one codec call per image.
    quality = JPEG_QUALITY[severity - 1]

    def codec(im: Image.Image) -> Image.Image:
        buffer = BytesIO()
        im.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer)

    return _per_image_pil(x.cpu(), codec).to(x.device)
