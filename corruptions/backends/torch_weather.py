"""Torch ports of the weather corruptions: snow, frost, fog and spatter."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from corruptions.backends import torch_ops as ops
from corruptions.backends.torch_blur import gaussian_cv2, motion_blur_layers
from corruptions.backends.torch_ops import Gens, unit
from repsep.errors import UserError

SNOW = ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))
FROST = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
# (loc, scale, sigma, threshold, intensity or mud sigma, mode: 0 = water, 1 = mud)
SPATTER = ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
           (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1))
WATER = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise, RGB
MUD = (63 / 255, 42 / 255, 20 / 255)  # brown, RGB
SPATTER_EDGE_KERNEL = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
FOG = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))


def snow(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    loc, scale, zoom, threshold, radius, sigma, blend = SNOW[severity - 1]
    h, w = x.shape[-2:]
    layer = ops.normal(gens, (1, h, w), loc, scale, x.device)
    angles = [ops.scalar_uniform(g, -135, -45, x.device) for g in gens]
    zh, zw = math.ceil(h / zoom), math.ceil(w / zoom)
    layer = ops.zoom_bilinear(layer, zoom, (int(round(zh * zoom)), int(round(zw * zoom))))
    layer = torch.where(layer < threshold, 0.0, layer).clamp_(0, 1)
    layer = motion_blur_layers(layer, radius, sigma, angles, (h, w))
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.snow(x, layer, blend)
    layer = torch.round(layer * 255) / 255
    xf = unit(x)
    gray = (0.299 * xf[:, 0:1] + 0.587 * xf[:, 1:2] + 0.114 * xf[:, 2:3]) * 1.5 + 0.5  # cv2 RGB2GRAY
    xf = blend * xf + (1 - blend) * torch.maximum(xf, gray)
    return (xf + layer + layer.flip(-2, -1)).clamp_(0, 1).mul_(255)


@lru_cache(maxsize=32)
def _frost_texture(index: int, height: int, width: int) -> np.ndarray:
    """Bundled frost texture ``index`` rescaled as the package does for an HxW image: uint8 [3, h, w] RGB."""
    import cv2
    import imagecorruptions

    path = Path(imagecorruptions.__file__).parent / "frost" / FROST_FILES[index]
    tex = cv2.imread(str(path))
    if tex is None:
        raise UserError(f"{path}: cannot read the frost texture bundled with imagecorruptions")
    fh, fw = tex.shape[:2]
    scale = 1.0
    if fh < height and fw >= width:
        scale = height / fh
    elif fh >= height and fw < width:
        scale = width / fw
    elif fh < height and fw < width:
        scale = max(height / fh, width / fw)
    scale *= 1.1
    size = (int(np.ceil(fw * scale)), int(np.ceil(fh * scale)))
    tex = cv2.resize(tex, dsize=size, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(tex[..., ::-1].transpose(2, 0, 1))  # BGR -> RGB, CHW


def frost(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    a, b = FROST[severity - 1]
    h, w = x.shape[-2:]
    crops = []
    for g in gens:  # texture choice and crop position per image, the package's three draws in its order
        rng = ops.legacy_numpy_rng(g)
        tex = _frost_texture(rng.randint(len(FROST_FILES)), h, w)
        top = rng.randint(0, tex.shape[1] - h)
        left = rng.randint(0, tex.shape[2] - w)
        crops.append(torch.from_numpy(tex[:, top:top + h, left:left + w]))
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.frost(x, torch.stack(crops), a, b)
    texture = torch.stack(crops).to(x.device, torch.float32)
    return (a * x.float() + b * texture).clamp_(0, 255)


def _wibbled_mean(total: torch.Tensor, wibble: float, gens: Gens) -> torch.Tensor:
    """total / 4 + wibble * U(-wibble, wibble), as the package's ``wibbledmean``."""
    return total / 4 + wibble * ops.uniform(gens, total.shape[1:], -wibble, wibble, total.device)


def plasma_fractal(gens: Gens, mapsize: int, wibbledecay: float, device: torch.device) -> torch.Tensor:
    """imagecorruptions' diamond-square height map, one per generator: [B, mapsize, mapsize] in [0, 1].

    Same recurrence as the package, written on the coarse grid of each level: the grid G (points at multiples of
    the step), its square centres and the two diamond sets (offsets (0, half) and (half, 0)) are interleaved into
    the next, twice finer grid.
    """
    b = len(gens)
    grid = torch.zeros((b, 1, 1), device=device)
    wibble = 100.0
    if ops.CPU_LOOPS and device.type == "cpu":
        from corruptions.backends.numba_kernels import plasma_level

        while grid.shape[1] < mapsize:  # the same draws in the same order: centres, across, down
            draws = [ops.uniform(gens, grid.shape[1:], -wibble, wibble, device) for _ in range(3)]
            grid = torch.stack([torch.from_numpy(plasma_level(grid[i].numpy(), *(d[i].numpy() for d in draws),
                                                              wibble)) for i in range(b)])
            wibble /= wibbledecay
    while grid.shape[1] < mapsize:
        n = grid.shape[1]
        square = grid + grid.roll(-1, dims=1)
        centres = _wibbled_mean(square + square.roll(-1, dims=2), wibble, gens)
        across = _wibbled_mean(centres + centres.roll(1, dims=1) + grid + grid.roll(-1, dims=2), wibble, gens)
        down = _wibbled_mean(centres + centres.roll(1, dims=2) + grid + grid.roll(-1, dims=1), wibble, gens)
        top = torch.stack([grid, across], dim=-1)
        bottom = torch.stack([down, centres], dim=-1)
        grid = torch.stack([top, bottom], dim=2).reshape(b, 2 * n, 2 * n)
        wibble /= wibbledecay
    flat = grid.view(b, -1)
    low, high = torch.aminmax(flat, dim=1, keepdim=True)
    flat -= low
    flat /= high - low  # = the maximum after the subtraction (rounding is monotonic), as the package divides
    return grid


def fog(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    amount, decay = FOG[severity - 1]
    h, w = x.shape[-2:]
    mapsize = 1 << (max(h, w, 3) - 1).bit_length()
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        max_val = x.amax(dim=(1, 2, 3)).float() / 255  # = the float image's maximum (x / 255 is monotonic)
        fractal = plasma_fractal(gens, mapsize, decay, x.device)[:, :h, :w]
        return numba_kernels.fog(x, fractal, amount, max_val)
    xf = unit(x)
    max_val = xf.amax(dim=(1, 2, 3), keepdim=True)
    xf += amount * plasma_fractal(gens, mapsize, decay, x.device)[:, None, :h, :w]
    return (xf * max_val / (max_val + amount)).clamp_(0, 1).mul_(255)


def _water_layer(liquid: np.ndarray, intensity: float) -> np.ndarray:
    """The package's water drops from the thresholded liquid layer: float32 [H, W] opacity (its OpenCV chain)."""
    liquid8 = (liquid * 255).astype(np.uint8)
    dist = cv2.distanceTransform(255 - cv2.Canny(liquid8, 50, 150), cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, SPATTER_EDGE_KERNEL), (3, 3)).astype(np.float32)
    m = liquid8 * dist
    top = m.max()
    return m * np.float32(intensity / top) if top > 0 else m  # the package divides by 0 here (NaN -> 0 grey levels)


def spatter(x: torch.Tensor, severity: int, gens: Gens) -> torch.Tensor:
    # liquid ~ N(loc, scale) per pixel (torch generators), skimage gaussian, zeroed below the threshold; water: the
    # package's Canny / distance-transform / equalizeHist chain in OpenCV (CPU), added in turquoise; mud: a blurred
    # mask >= 0.8 blended with brown. The layers are computed per image on CPU in float32, composited on x's device.
    loc, scale, sigma, threshold, strength, mode = SPATTER[severity - 1]
    h, w = x.shape[-2:]
    liquid = ops.normal(gens, (h, w), loc, scale, x.device).cpu().numpy()
    layers = []
    for plane in liquid:
        plane = gaussian_cv2(plane, sigma)
        plane[plane < threshold] = 0
        if mode == 0:
            layers.append(_water_layer(plane, strength))
        else:
            mud = gaussian_cv2((plane > threshold).astype(np.float32), strength)
            mud[mud < 0.8] = 0
            layers.append(mud)
    if ops.cpu_loops(x):
        from corruptions.backends import numba_kernels

        return numba_kernels.spatter(x, torch.from_numpy(np.stack(layers)), WATER if mode == 0 else MUD, mode == 1)
    m = torch.from_numpy(np.stack(layers)).to(x.device)[:, None]
    xf = unit(x)
    colour = torch.tensor(WATER if mode == 0 else MUD, device=x.device).view(1, 3, 1, 1)
    out = xf.add_(m * colour) if mode == 0 else xf.mul_(1 - m).add_(m * colour)
    return out.clamp_(0, 1).mul_(255)
