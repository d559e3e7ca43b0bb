"""Batched torch building blocks for the corruption ports: padding, FFT filtering, kernels, resampling, RNG.

Images are float or uint8 tensors [B, C, H, W] on any device. Every helper here is deterministic; random draws
take one ``torch.Generator`` per image so an image's pixels never depend on the rest of its batch (nor on the
number of threads).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

Gens = list[torch.Generator]  # one generator per image of a batch
# On the CPU the elementwise ports run as compiled loops (corruptions.backends.numba_kernels); the tests turn this off
# to compare them with the torch arithmetic, which every other device runs.
CPU_LOOPS = True


def cpu_loops(x: torch.Tensor) -> bool:
    """Whether a port should run its numba loop for ``x`` (on the CPU, unless :data:`CPU_LOOPS` is off)."""
    return CPU_LOOPS and x.device.type == "cpu"


def unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1] (a new tensor, safe to modify in place)."""
    return x.float().div_(255)


# ---------------------------------------------------------------- random draws, one generator per image
def generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    """One generator per image, seeded with that image's seed, on ``device``."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


RNG_BANDS = 4  # a large per-image draw is split into this many parts, each from its own child generator
BANDED_NUMEL = 1 << 20  # per-image draws at least this large are banded (a 1024x2048 RGB image has 6.3 M values)
_pool: tuple[tuple[int, int], ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    """A pool with one thread per torch intra-op thread: made again when that count changes (the sweep sets it per
    situation, corruptions.threads) and in a forked child (threads do not survive a fork)."""
    global _pool
    key = (os.getpid(), max(torch.get_num_threads(), 1))
    with _pool_lock:
        if _pool is None or _pool[0] != key:
            if _pool is not None and _pool[0][0] == key[0]:
                _pool[1].shutdown(wait=False)
            _pool = (key, ThreadPoolExecutor(max_workers=key[1]))
        return _pool[1]


def run_parallel(rows: int, band: Callable[[int, int], None]) -> None:
    """``band(r0, r1)`` over ``rows`` split into one contiguous band per torch intra-op thread, run on the CPU pool
    (the callee must release the GIL: a numba ``nogil`` loop); on one thread, one call."""
    threads = min(max(torch.get_num_threads(), 1), rows)
    if threads <= 1:
        band(0, rows)
        return
    edges = np.linspace(0, rows, threads + 1).astype(int)
    list(_thread_pool().map(lambda i: band(int(edges[i]), int(edges[i + 1])), range(threads)))


def _draw(out: torch.Tensor, gens: list[torch.Generator], fill: Callable[[torch.Tensor, torch.Generator], None]
          ) -> torch.Tensor:
    """Fill ``out[b]`` from ``gens[b]`` with ``fill(part, generator)``.

    torch's CPU generator fills a tensor on one thread (about 18 ms for 6.3 M uniform values here). A large draw is
    therefore split into ``RNG_BANDS`` contiguous parts, each from a child generator seeded by the image's generator,
    and the parts are filled in parallel threads on the CPU. The split is fixed, so the values depend on the seed
    only, not on the thread count or device scheduling.
    """
    per_image = out[0].numel() if len(out) else 0
    jobs = []
    for b, g in enumerate(gens):
        if per_image < BANDED_NUMEL:
            jobs.append((out[b], g))
            continue
        seeds = torch.randint(0, 2 ** 62, (RNG_BANDS,), generator=g, device=g.device).tolist()
        parts = out[b].view(-1).tensor_split(RNG_BANDS)
        jobs += [(part, torch.Generator(device=out.device).manual_seed(seed))
                 for part, seed in zip(parts, seeds, strict=True)]
    if out.device.type == "cpu" and torch.get_num_threads() > 1 and len(jobs) > 1:
        list(_thread_pool().map(lambda job: fill(*job), jobs))
    else:
        for job in jobs:
            fill(*job)
    return out


def uniform(gens: list[torch.Generator], shape: Sequence[int], low: float, high: float, device: torch.device,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[B, *shape] with image b's values drawn from U(low, high) by ``gens[b]`` (see :func:`_draw`)."""
    out = torch.empty((len(gens), *shape), device=device, dtype=dtype)
    return _draw(out, gens, lambda part, g: part.uniform_(low, high, generator=g))


def normal(gens: list[torch.Generator], shape: Sequence[int], mean: float, std: float, device: torch.device,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[B, *shape] with image b's values drawn from N(mean, std^2) by ``gens[b]`` (see :func:`_draw`)."""
    out = torch.empty((len(gens), *shape), device=device, dtype=dtype)
    return _draw(out, gens, lambda part, g: part.normal_(mean, std, generator=g))


def scalar_uniform(gen: torch.Generator, low: float, high: float, device: torch.device) -> float:
    """One U(low, high) draw (a Python float, float64 precision)."""
    return float(torch.empty((), dtype=torch.float64, device=device).uniform_(low, high, generator=gen))


def legacy_numpy_rng(gen: torch.Generator) -> np.random.RandomState:
    """NumPy's legacy RNG seeded with the image's seed (``gen.initial_seed()``), as the reference backend seeds
    ``np.random`` before each call: drawing the same scalars in the package's order gives the package's values."""
    return np.random.RandomState(gen.initial_seed())


POISSON_BINS = 4096  # u-bins of the inverse-CDF table; about (cap + 1) / 4096 of the draws need a search


@lru_cache(maxsize=16)
def poisson_tables(rate_scale: float, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF tables for K ~ Poisson(v / 255 * rate_scale), v = 0..255, capped at ``cap``.

    Returns ``cdf`` float64 [256, cap] (P(K <= j)) and ``guess`` uint8 [256 * bins]: for u in bin
    [b / bins, (b + 1) / bins) the count K(u) = #{j < cap: cdf[v, j] <= u}, plus 128 when K varies within the bin.
    """
    lam = np.arange(256, dtype=np.float64)[:, None] / 255.0 * rate_scale
    j = np.arange(cap, dtype=np.float64)[None, :]
    log_fact = np.cumsum(np.log(np.maximum(np.arange(cap, dtype=np.float64), 1)))
    log_pmf = -lam + j * np.log(np.maximum(lam, 1e-300)) - log_fact[None, :]
    pmf = np.where(lam > 0, np.exp(log_pmf), (j == 0).astype(np.float64))
    cdf = np.cumsum(pmf, axis=1)
    edges = np.arange(POISSON_BINS + 1, dtype=np.float64) / POISSON_BINS
    at_lo = (cdf[:, None, :] <= edges[None, :-1, None]).sum(-1)
    below_hi = (cdf[:, None, :] < edges[None, 1:, None]).sum(-1)
    guess = at_lo + 128 * (below_hi != at_lo)
    return cdf, guess.astype(np.uint8).reshape(-1)


def poisson_capped(gens: list[torch.Generator], values: torch.Tensor, rate_scale: float, cap: int) -> torch.Tensor:
    """min(Poisson(values / 255 * rate_scale), cap) per element by inverse-CDF sampling (the exact distribution).

    ``values`` is uint8 [B, ...] (cap < 128); returns float32 counts. One uniform per element from each image's
    generator; a bin table answers directly except in the few bins that hold a CDF step, searched exactly.
    """
    device = values.device
    cdf_np, guess_np = poisson_tables(float(rate_scale), int(cap))
    u = uniform(gens, values.shape[1:], 0.0, 1.0, device)
    index = values.int() * POISSON_BINS + (u * POISSON_BINS).int().clamp_(max=POISSON_BINS - 1)
    guess = torch.from_numpy(guess_np).to(device).index_select(0, index.reshape(-1)).view(values.shape)
    ambiguous = (guess >= 128).nonzero(as_tuple=True)
    k = (guess & 127).float()
    if ambiguous[0].numel():
        cdf = torch.from_numpy(np.concatenate([cdf_np, np.full((256, 1), np.inf)], 1)).to(device).view(-1)
        row = values[ambiguous].long() * (cap + 1)
        uu = u[ambiguous].double()
        kk = k[ambiguous].long()
        while True:  # step forward while u passes the CDF (a few steps at most)
            step = uu >= cdf[row + kk]
            if not bool(step.any()):
                break
            kk += step
        k[ambiguous] = kk.float()
    return k


# ---------------------------------------------------------------- padding and FFT filtering
def pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> torch.Tensor:
    """Pad the last two dims. ``mode``: 'replicate' (scipy nearest), 'reflect' (cv2 REFLECT_101),
    'symmetric' (scipy reflect: the edge pixel repeated, d c b a | a b c d)."""
    if mode in ("replicate", "reflect"):
        return F.pad(x, (left, right, top, bottom), mode=mode)
    if mode != "symmetric":
        raise ValueError(f"unknown padding mode {mode!r}")
    h, w = x.shape[-2:]
    if max(top, bottom) <= h and max(left, right) <= w:  # one mirror per side: flipped slices (memcpy speed)
        x = torch.cat([x[..., :top, :].flip(-2), x, x[..., h - bottom:, :].flip(-2)], dim=-2)
        return torch.cat([x[..., :left].flip(-1), x, x[..., w - right:].flip(-1)], dim=-1)
    rows = _symmetric_index(h, top, bottom, x.device)
    cols = _symmetric_index(w, left, right, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _symmetric_index(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(-before, n + after, device=device)
    period = 2 * n
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - 1 - i, i)


def _fast_size(n: int) -> int:
    """Smallest 5-smooth multiple of 8 that is >= n: a fast FFT length.

    pocketfft is several times slower on lengths rich in 3s and 5s (3^7 = 2187, 3^2 5^3 = 1125) than on slightly
    longer ones with more factors of 2 (2304, 1152): the elastic blur of a 1024x2048 image took 132 ms at
    (1125, 2187) and 43 ms at (1152, 2304) on one thread.
    """
    n = -(-n // 8) * 8
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 8


def correlate(x: torch.Tensor, kernel: torch.Tensor, anchor: tuple[int, int], mode: str,
              out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Cross-correlate every channel of ``x`` [B, C, H, W] with ``kernel`` by FFT, borders extended by ``mode``.

    ``kernel`` is [kh, kw] (shared) or [B, kh, kw] (one per image); ``anchor`` (ay, ax) is the kernel tap that sits
    on the output pixel: ``out[h, w] = sum_ij K[i, j] * xpad[h + i - ay, w + j - ax]`` (cv2.filter2D semantics).
    ``out_size`` crops the output to its top-left (H', W') corner, default (H, W). float32 or float64.
    """
    h, w = x.shape[-2:]
    kh, kw = kernel.shape[-2:]
    ay, ax = anchor
    xp = pad(x.contiguous(), ay, kh - 1 - ay, ax, kw - 1 - ax, mode)  # whole planes, not a channels_last view
    size = (_fast_size(xp.shape[-2]), _fast_size(xp.shape[-1]))
    k = kernel.to(x.dtype).flip(-2, -1)
    if k.ndim == 3:
        k = k[:, None]
    spec = torch.fft.rfft2(xp, s=size) * torch.fft.rfft2(k, s=size)
    full = torch.fft.irfft2(spec, s=size)
    oh, ow = out_size or (h, w)
    return full[..., kh - 1:kh - 1 + oh, kw - 1:kw - 1 + ow]


def gaussian_kernel1d(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's Gaussian taps: radius int(truncate * sigma + 0.5), normalised, float64."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 / float(sigma) ** 2 * x ** 2)
    return k / k.sum()


def gaussian_filter(x: torch.Tensor, sigma: tuple[float, float], truncate: float, mode: str) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter over the last two dims of [B, C, H, W] (``mode`` as in :func:`pad`)."""
    ky, kx = gaussian_kernel1d(sigma[0], truncate), gaussian_kernel1d(sigma[1], truncate)
    kernel = torch.from_numpy(np.outer(ky, kx)).to(x.device)
    return correlate(x, kernel, (len(ky) // 2, len(kx) // 2), mode)


# ---------------------------------------------------------------- resampling
def zoom_bilinear(x: torch.Tensor, zoom: float, keep: tuple[int, int]) -> torch.Tensor:
    """imagecorruptions' ``clipped_zoom`` followed by a crop to the top-left ``keep`` (H', W').

    Centre crop of ceil(H / zoom) x ceil(W / zoom), then scipy.ndimage.zoom(order=1) to round(crop * zoom), whose
    sample grid is align_corners=True; uint8 input is resampled by torch's uint8 kernel (rounded to integers).
    """
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    size = (int(round(ch * zoom)), int(round(cw * zoom)))
    out = F.interpolate(crop, size=size, mode="bilinear", align_corners=True)
    return out[..., :keep[0], :keep[1]]


# ---------------------------------------------------------------- motion-blur kernel
def motion_kernel(radius: int, sigma: float, angle: float, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """imagecorruptions' shift-and-add motion blur as a correlation kernel (2P+1)x(2P+1) anchored at (P, P).

    Tap i (weight exp(-i^2 / 2 sigma^2), normalised) takes the pixel shifted by (dy, dx) with edge replication;
    taps stop at the first shift that leaves the image, as in the package.
    """
    width = 2 * radius + 1
    taps = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    taps = taps / taps.sum()
    py, px = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
    hypot = math.hypot(py, px)
    kernel = np.zeros((2 * width + 1, 2 * width + 1))
    for i in range(width):
        dy = -math.ceil(((i * py) / hypot) - 0.5)
        dx = -math.ceil(((i * px) / hypot) - 0.5)
        if abs(dy) >= shape[0] or abs(dx) >= shape[1]:
            break
        kernel[width - dy, width - dx] += taps[i]  # shifted[h, w] = x[h - dy, w - dx]
    return kernel, width
