"""Compiled CPU loops (numba) for the torch backend: the fused elementwise parts of the corruptions (glass blur's
walk: numba_glass).

On the CPU an elementwise port written in torch makes one pass over a float32 image per operation (uint8 -> float,
divide, add, clamp, multiply, back to uint8: about 4 ms each at 1024x2048 on one thread); the loops here make one
pass, reading the uint8 pixels (NHWC) and the port's random draws ([C, H, W], as torch draws them) and writing the
uint8 result. Each loop repeats the torch port's float32 arithmetic operation by operation (no fused multiply-add,
constants rounded to float32 first, truncation to uint8), so it gives the pixels of the port's torch path on the CPU
(tests/test_numba_kernels.py; other devices may round a division differently, and their random draws differ anyway).
Two exceptions: contrast's channel means come from a histogram (a float64 sum in another order, so a mean can in rare
cases differ by one float32 step), and glass_blur's loop keeps the CPU's OpenCV blurs (the torch path blurs by
separable passes; both within 2 grey levels of the reference). Rows are split into bands run on the torch backend's
thread pool (the loops release the GIL), so the thread count is the one the sweep chose (corruptions.threads).

Compiled on first use and cached by numba beside this file or in the user's cache (about a second per loop the first
time; a process without a writable cache compiles once).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import torch

from corruptions.backends.torch_ops import run_parallel


def jit(function: Callable) -> Callable:
    """numba.njit without the GIL, cached on disk where numba finds a writable place (else compiled per process)."""
    try:
        return numba.njit(cache=True, nogil=True, error_model="numpy")(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available" (read-only install and home)
        return numba.njit(cache=False, nogil=True, error_model="numpy")(function)


F32 = np.float32
ZERO, ONE, W255, INV255 = F32(0), F32(1), F32(255), F32(1 / 255)
@jit
def to_uint8(v: np.float32) -> np.uint8:  # pragma: no cover (compiled)
    """clamp(v, 0, 1) * 255 truncated, as ``.clamp_(0, 1).mul_(255)`` then ``.to(torch.uint8)``."""
    return np.uint8(min(max(v, ZERO), ONE) * W255)


@jit
def _gaussian_noise(x, noise, out, r0, r1):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            for c in range(3):
                out[y, i, c] = to_uint8(F32(x[y, i, c]) / W255 + noise[c, y, i])


@jit
def _speckle_noise(x, noise, out, r0, r1):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            for c in range(3):
                v = F32(x[y, i, c]) / W255
                out[y, i, c] = to_uint8(v + v * noise[c, y, i])


@jit
def _impulse_noise(x, u, out, r0, r1, c_all, c_salt):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            for c in range(3):
                d = u[c, y, i]
                out[y, i, c] = 255 if d < c_salt else (0 if d < c_all else x[y, i, c])


@jit
def _shot_noise(x, u, out, r0, r1, guess, cdf, cap, bins, scale):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            for c in range(3):
                v = np.int64(x[y, i, c])
                d = u[c, y, i]
                k = np.int64(guess[v * bins + min(np.int64(d * F32(bins)), bins - 1)])
                if k >= 128:  # a bin holding a CDF step: step forward while u passes the CDF
                    k -= 128
                    dd = np.float64(d)
                    while k < cap and dd >= cdf[v, k]:
                        k += 1
                out[y, i, c] = np.uint8(F32(k) * scale)


@jit
def _brightness(x, out, r0, r1, c):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            r, g, b = F32(x[y, i, 0]) / W255, F32(x[y, i, 1]) / W255, F32(x[y, i, 2]) / W255
            v = max(r, g, b)
            v_new = min(v + c, ONE)
            if v > ZERO:
                f = v_new / max(v, F32(1e-12))
                out[y, i, 0], out[y, i, 1], out[y, i, 2] = to_uint8(r * f), to_uint8(g * f), to_uint8(b * f)
            else:
                out[y, i, 0] = out[y, i, 1] = out[y, i, 2] = to_uint8(v_new)


@jit
def _saturate(x, out, r0, r1, a, b):  # pragma: no cover (compiled)
    tiny = F32(1e-12)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            p = (F32(x[y, i, 0]) / W255, F32(x[y, i, 1]) / W255, F32(x[y, i, 2]) / W255)
            v = max(p[0], p[1], p[2])
            delta = v - min(p[0], p[1], p[2])
            s = delta / max(v, tiny) if delta > ZERO else ZERO
            s_new = min(max(s * a + b, ZERO), ONE)
            if delta > ZERO:
                f = s_new / max(s, tiny)
                for c in range(3):
                    out[y, i, c] = to_uint8(v - (v - p[c]) * f)
            else:
                grey = v * (ONE - s_new)
                out[y, i, 0], out[y, i, 1], out[y, i, 2] = to_uint8(v), to_uint8(grey), to_uint8(grey)


@jit
def _contrast(x, means, out, r0, r1, c):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            for k in range(3):
                out[y, i, k] = to_uint8((F32(x[y, i, k]) / W255 - means[k]) * c + means[k])


@jit
def _snow(x, layer, out, r0, r1, keep, towards):  # pragma: no cover (compiled)
    h, w = layer.shape
    for y in range(r0, r1):
        for i in range(w):
            r, g, b = F32(x[y, i, 0]) / W255, F32(x[y, i, 1]) / W255, F32(x[y, i, 2]) / W255
            grey = (F32(0.299) * r + F32(0.587) * g + F32(0.114) * b) * F32(1.5) + F32(0.5)
            flakes = np.rint(layer[y, i] * W255) / W255
            flipped = np.rint(layer[h - 1 - y, w - 1 - i] * W255) / W255
            for c, v in ((0, r), (1, g), (2, b)):
                v = keep * v + towards * max(v, grey)
                out[y, i, c] = to_uint8(v + flakes + flipped)


@jit
def _fog(x, fractal, brightest, out, r0, r1, amount):  # pragma: no cover (compiled)
    max_val = brightest[0]
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            f = amount * fractal[y, i]
            for c in range(3):
                out[y, i, c] = to_uint8((F32(x[y, i, c]) / W255 + f) * max_val / (max_val + amount))


@jit
def _plasma_centres(grid, u, out, r0, r1, wibble):  # pragma: no cover (compiled)
    n = grid.shape[0]
    for i in range(r0, r1):
        i1 = (i + 1) % n
        for j in range(n):
            j1 = (j + 1) % n
            total = (grid[i, j] + grid[i1, j]) + (grid[i, j1] + grid[i1, j1])
            out[2 * i + 1, 2 * j + 1] = total / F32(4) + wibble * u[i, j]
            out[2 * i, 2 * j] = grid[i, j]


@jit
def _plasma_edges(grid, u_across, u_down, out, r0, r1, wibble):  # pragma: no cover (compiled)
    n = grid.shape[0]
    for i in range(r0, r1):
        i0, i1 = (i - 1) % n, (i + 1) % n
        for j in range(n):
            j0, j1 = (j - 1) % n, (j + 1) % n
            c = out[2 * i + 1, 2 * j + 1]
            across = ((c + out[2 * i0 + 1, 2 * j + 1]) + grid[i, j]) + grid[i, j1]
            down = ((c + out[2 * i + 1, 2 * j0 + 1]) + grid[i, j]) + grid[i1, j]
            out[2 * i, 2 * j + 1] = across / F32(4) + wibble * u_across[i, j]
            out[2 * i + 1, 2 * j] = down / F32(4) + wibble * u_down[i, j]


def plasma_level(grid: np.ndarray, u_centres: np.ndarray, u_across: np.ndarray, u_down: np.ndarray,
                 wibble: float) -> np.ndarray:
    """One diamond-square level of fog's height map: float32 [n, n] -> [2n, 2n], as ``torch_weather.plasma_fractal``
    computes it (the same sums in the same order, wrapping at the edges; the draws U(-wibble, wibble) given, [n, n])."""
    n, w = grid.shape[0], F32(wibble)
    out = np.empty((2 * n, 2 * n), np.float32)
    run_parallel(n, lambda r0, r1: _plasma_centres(grid, u_centres, out, r0, r1, w))
    run_parallel(n, lambda r0, r1: _plasma_edges(grid, u_across, u_down, out, r0, r1, w))  # reads the centres
    return out


@jit
def _histograms(x, counts):  # pragma: no cover (compiled)
    for y in range(x.shape[0]):
        for i in range(x.shape[1]):
            for c in range(3):
                counts[c, x[y, i, c]] += 1


@jit
def _frost(x, texture, out, r0, r1, a, b):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            for c in range(3):
                v = a * F32(x[y, i, c]) + b * F32(texture[c, y, i])
                out[y, i, c] = np.uint8(min(max(v, ZERO), W255))


@jit
def _spatter(x, layer, out, r0, r1, colour, mud):  # pragma: no cover (compiled)
    for y in range(r0, r1):
        for i in range(x.shape[1]):
            m = layer[y, i]
            for c in range(3):
                v = F32(x[y, i, c]) / W255
                v = v * (ONE - m) + m * colour[c] if mud else v + m * colour[c]
                out[y, i, c] = to_uint8(v)


@jit
def _planes_to_uint8(planes, out, r0, r1, unit_range):  # pragma: no cover (compiled)
    """float [3, H, W] -> uint8 [H, W, 3]: clamp to [0, 1] * 255 (unit_range) or to [0, 255], truncated."""
    for y in range(r0, r1):
        for i in range(planes.shape[2]):
            for c in range(3):
                v = planes[c, y, i]
                out[y, i, c] = to_uint8(v) if unit_range else np.uint8(min(max(v, ZERO), W255))


# ---------------------------------------------------------------- the ports' CPU entry points
def _run(loop: Callable[..., None], x: torch.Tensor, per_image: tuple[torch.Tensor, ...], *params) -> torch.Tensor:
    """``loop(pixels, *inputs, out, r0, r1, *params)`` per image over row bands.

    ``x`` is uint8 [B, 3, H, W] (channels_last memory: no copy); ``per_image`` holds tensors [B, ...] whose image-b
    slices are the loop's ``inputs`` (the random draws [3, H, W], a layer [H, W], contrast's channel means [3]).
    Returns uint8 [B, 3, H, W] in channels_last memory, so the backend's NHWC result needs no copy.
    """
    pixels = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
    out = np.empty_like(pixels)
    for b in range(pixels.shape[0]):
        inputs = (pixels[b], *(t[b].numpy() for t in per_image), out[b])
        run_parallel(pixels.shape[1], lambda r0, r1, inputs=inputs: loop(*inputs, r0, r1, *params))
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def gaussian_noise(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """clip(x / 255 + noise, 0, 1) * 255 as uint8; ``noise`` float32 [B, 3, H, W]."""
    return _run(_gaussian_noise, x, (noise,))


def speckle_noise(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """clip(x / 255 + x / 255 * noise, 0, 1) * 255 as uint8; ``noise`` float32 [B, 3, H, W]."""
    return _run(_speckle_noise, x, (noise,))


def impulse_noise(x: torch.Tensor, u: torch.Tensor, amount: float) -> torch.Tensor:
    """0 where u < amount, 255 where u < amount / 2, else x; ``u`` float32 [B, 3, H, W] in [0, 1)."""
    return _run(_impulse_noise, x, (u,), F32(amount), F32(amount * 0.5))


def shot_noise(x: torch.Tensor, u: torch.Tensor, guess: np.ndarray, cdf: np.ndarray, cap: int, bins: int
               ) -> torch.Tensor:
    """Capped Poisson counts by the inverse-CDF tables of ``torch_ops.poisson_capped``, times 255 / cap, as uint8."""
    return _run(_shot_noise, x, (u,), guess, cdf, cap, bins, F32(255 / cap))


def brightness(x: torch.Tensor, c: float) -> torch.Tensor:
    """HSV value + c (clipped), in the closed form of ``torch_digital.brightness``, as uint8."""
    return _run(_brightness, x, (), F32(c))


def saturate(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """HSV saturation * a + b (clipped), in the closed form of ``torch_digital.saturate``, as uint8."""
    return _run(_saturate, x, (), F32(a), F32(b))


def channel_means(x: torch.Tensor) -> torch.Tensor:
    """Per image and channel, the mean of ``x / 255`` (float32 values summed in float64, as torch's
    ``mean(dtype=float64)``; from a histogram, so the sum's rounding order differs): float32 [B, 3, 1, 1]."""
    pixels = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
    values = (np.arange(256, dtype=np.float32) / W255).astype(np.float64)
    means = []
    for image in pixels:
        counts = np.zeros((3, 256), np.int64)
        _histograms(image, counts)
        means.append(counts @ values / (image.shape[0] * image.shape[1]))
    return torch.from_numpy(np.stack(means).astype(np.float32)).view(-1, 3, 1, 1)


def contrast(x: torch.Tensor, means: torch.Tensor, c: float) -> torch.Tensor:
    """(x / 255 - mean) * c + mean per channel, clipped, as uint8; ``means`` float32 [B, 3, 1, 1]."""
    return _run(_contrast, x, (means.reshape(-1, 3),), F32(c))


def frost(x: torch.Tensor, texture: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """clip(a x + b texture, 0, 255) as uint8; ``texture`` uint8 [B, 3, H, W] (the crops)."""
    return _run(_frost, x, (texture,), F32(a), F32(b))


def spatter(x: torch.Tensor, layer: torch.Tensor, colour: tuple[float, float, float], mud: bool) -> torch.Tensor:
    """x / 255 + m colour (water) or x / 255 (1 - m) + m colour (mud), clipped, as uint8; ``layer`` (m) float32
    [B, H, W]."""
    return _run(_spatter, x, (layer,), np.array(colour, np.float32), mud)


def snow(x: torch.Tensor, layer: torch.Tensor, blend: float) -> torch.Tensor:
    """The snow composite of ``torch_weather.snow`` from its blurred flake layer (float32 [B, 1, H, W]), as uint8."""
    return _run(_snow, x, (layer[:, 0],), F32(blend), F32(1 - blend))


def fog(x: torch.Tensor, fractal: torch.Tensor, amount: float, max_val: torch.Tensor) -> torch.Tensor:
    """(x / 255 + amount * fractal) * max / (max + amount), clipped, as uint8; ``fractal`` float32 [B, H, W] (a view
    of the map is fine), ``max_val`` [B] (each image's brightest value / 255)."""
    return _run(_fog, x, (fractal, max_val.float().view(-1, 1)), F32(amount))


def planes_to_uint8(planes: torch.Tensor, unit_range: bool) -> torch.Tensor:
    """A filter's float32 output [B, 3, H, W] (any strides) as uint8 [B, 3, H, W] in channels_last memory, in one
    pass: ``clamp_(0, 1).mul_(255)`` when ``unit_range`` else ``clamp_(0, 255)``, then truncation."""
    b, _, h, w = planes.shape
    out = np.empty((b, h, w, 3), np.uint8)
    for k in range(b):
        plane = planes[k].numpy()
        run_parallel(h, lambda r0, r1, p=plane, o=out[k]: _planes_to_uint8(p, o, r0, r1, unit_range))
    return torch.from_numpy(out).permute(0, 3, 1, 2)
