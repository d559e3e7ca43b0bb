"""Over-smoothing metrics of one feature map per image, and linear CKA between layers.

All functions take patch tokens ``X`` of one or more images (rows = tokens, CLS/register tokens removed) and
compute in float64. Definitions (see ``shared/reference/analysis_metrics.md`` A1):

- Patch-wise absolute cosine similarity (Gong et al. 2021, arXiv 2104.12753):
  ``P(X) = 1/(N(N-1)) * sum_{i != j} |cos(x_i, x_j)|`` over all ordered pairs of distinct tokens; the signed
  variant (Shi et al. 2022) drops the absolute value.
- Same-class / different-class cosine: the signed mean cosine over ordered pairs ``i != j`` of *labelled* tokens
  whose labels are equal / differ. Each is a per-image mean (sum over the image's qualifying pairs divided by
  their number); an image without such pairs gives NaN, and :func:`mean_over_images` skips it.
- Rank-collapse residual ratio (Dong et al. 2021, arXiv 2103.03404): ``r = ||X - 1 mu^T||_F / ||X||_F`` with
  ``mu`` the mean token, which is the argmin of ``||X - 1 x^T||_F`` over ``x`` (the paper's composite
  l1/l_inf norm has no closed-form argmin; the Frobenius norm is used for both the fit and the ratio).
  0 for fully collapsed (rank-1, identical) tokens.
- High-frequency energy ratio (Wang et al. 2022, arXiv 2203.05962, taken over the 2-D token grid): the 2-D FFT of
  every channel over the ``h x w`` grid; the share of spectral energy ``|F|^2`` at frequencies whose radius
  exceeds ``cutoff`` times the Nyquist frequency (see :func:`high_frequency_ratio`).
- Linear CKA (Kornblith et al. 2019, arXiv 1905.00414) on column-centred ``X [n, d1]``, ``Y [n, d2]`` whose rows
  are the same n samples: ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Bound on the float64 Gram entries held at once by cosine_stats (B * rows * N); 8M entries = 64 MB.
_GRAM_ENTRIES = 8 * 1024 * 1024


def cosine_stats(tokens: Tensor, labels: Tensor | None = None,
                 groups: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Per-image pairwise cosine statistics from normalised Gram matrices.

    Args:
        tokens: ``[B, N, D]`` patch tokens of B images (N >= 2). A zero token has cosine 0 with every token.
        labels: ``[B, N]`` int class per token, ``-1`` for unlabelled tokens (they still count in ``abs_cos`` and
            ``cos`` but in no class pair). None: only the label-free statistics are returned.
        groups: name -> ``[B, N]`` labels of a token subset (``-1`` outside it), e.g. the interior and the
            boundary tokens: adds ``same_cos_<name>`` / ``diff_cos_<name>`` (and pair counts) over pairs whose
            two tokens are both in the subset, from the same Gram matrices.

    Returns:
        Dict of float64 ``[B]`` tensors: ``abs_cos`` (mean |cos| over i != j), ``cos`` (mean signed cos over
        i != j) and, with labels, ``same_cos`` / ``diff_cos`` (mean signed cos over same-class / different-class
        pairs of labelled tokens, NaN where an image has none) and ``same_pairs`` / ``diff_pairs`` (pair counts).
    """
    if tokens.dim() != 3 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be [B, N>=2, D], got {tuple(tokens.shape)}")
    b, n, _ = tokens.shape
    x = torch.nn.functional.normalize(tokens.to(torch.float64), dim=-1)
    label_sets = {"": labels} if labels is not None else {}
    label_sets.update({f"_{g}": v for g, v in (groups or {}).items()})
    pair_keys = [f"{kind}{suffix}" for suffix in label_sets for kind in ("same", "diff")]
    sums = {k: torch.zeros(b, dtype=torch.float64, device=x.device) for k in ("abs", "sig", *pair_keys)}
    counts = {k: torch.zeros(b, dtype=torch.float64, device=x.device) for k in pair_keys}
    rows = max(1, _GRAM_ENTRIES // (b * n))
    for start in range(0, n, rows):
        g = x[:, start:start + rows] @ x.transpose(1, 2)  # [B, r, N]
        r = g.shape[1]
        off_diag = torch.ones(r, n, dtype=torch.bool, device=x.device)
        off_diag[torch.arange(r), torch.arange(start, start + r)] = False
        sums["abs"] += (g.abs() * off_diag).sum((1, 2))
        sums["sig"] += (g * off_diag).sum((1, 2))
        for suffix, lab in label_sets.items():
            li, lj = lab[:, start:start + r, None], lab[:, None, :]
            labelled = (li >= 0) & (lj >= 0) & off_diag
            for kind, mask in (("same", labelled & (li == lj)), ("diff", labelled & (li != lj))):
                sums[kind + suffix] += (g * mask).sum((1, 2))
                counts[kind + suffix] += mask.sum((1, 2))
    pairs = n * (n - 1)
    out = {"abs_cos": sums["abs"] / pairs, "cos": sums["sig"] / pairs}
    for suffix in label_sets:
        for kind in ("same", "diff"):
            key = kind + suffix
            c = counts[key]
            out[f"{kind}_cos{suffix}"] = torch.where(c > 0, sums[key] / c.clamp_min(1), torch.full_like(c, math.nan))
            out[f"{kind}_pairs{suffix}"] = c
    return out


def residual_ratio(tokens: Tensor) -> Tensor:
    """Rank-collapse residual ratio ``||X - 1 mu^T||_F / ||X||_F`` per image.

    Args:
        tokens: ``[B, N, D]``.

    Returns:
        float64 ``[B]`` in [0, 1]; 0 when all tokens of an image are equal, NaN for an all-zero image.
    """
    x = tokens.to(torch.float64)
    res = x - x.mean(dim=1, keepdim=True)
    return res.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)


def high_frequency_ratio(fmap: Tensor, cutoff: float = 0.5) -> Tensor:
    """Share of spectral energy above a radial cut-off, from the 2-D FFT over the token grid.

    Frequencies are ``(fy, fx)`` in cycles per token (``torch.fft.fftfreq``, in [-0.5, 0.5)); the normalised radius
    is ``rho = sqrt(fy^2 + fx^2) / 0.5`` (1 = Nyquist along one axis, sqrt(2) = the checkerboard corner). The
    low-pass band is ``rho <= cutoff``; the ratio is ``sum_{rho > cutoff} |F|^2 / sum |F|^2`` summed over
    channels. ``cutoff=0`` keeps only the DC term in the band, and the ratio then equals ``residual_ratio**2``
    (Parseval). A constant map gives 0, a +-1 checkerboard gives 1 for any ``cutoff < sqrt(2)``.

    Args:
        fmap: ``[B, C, h, w]`` feature maps.
        cutoff: radius of the low-pass band as a fraction of the Nyquist frequency, in [0, sqrt(2)).

    Returns:
        float64 ``[B]``; NaN for an all-zero map.
    """
    if not 0.0 <= cutoff < math.sqrt(2.0):
        raise ValueError(f"cutoff must be in [0, sqrt(2)), got {cutoff}")
    h, w = fmap.shape[-2:]
    energy = torch.fft.fft2(fmap.to(torch.float64)).abs().square().sum(1)  # [B, h, w]
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=fmap.device)[:, None]
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=fmap.device)[None, :]
    high = (fy.square() + fx.square()).sqrt() / 0.5 > cutoff
    return (energy * high).sum((1, 2)) / energy.sum((1, 2))


def _centred(x: Tensor) -> tuple[Tensor, Tensor]:
    """Column-centred float64 copy of ``x [n, d]`` and the Frobenius norm of its Gram ``x^T x``."""
    x = x.to(torch.float64)
    x = x - x.mean(0, keepdim=True)
    return x, (x.T @ x).norm()


def _cka(x: tuple[Tensor, Tensor], y: tuple[Tensor, Tensor]) -> float:
    denom = x[1] * y[1]
    return float((y[0].T @ x[0]).square().sum() / denom) if denom > 0 else math.nan


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA between two representations of the same ``n`` samples.

    Args:
        x: ``[n, d1]``.
        y: ``[n, d2]`` (row i of ``x`` and ``y`` is the same sample).

    Returns:
        CKA in [0, 1]; invariant to orthogonal transforms and isotropic scaling of either side. NaN when one side
        is constant over the samples.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y need the same samples (rows): {x.shape[0]} != {y.shape[0]}")
    return _cka(_centred(x), _centred(y))


def cka_matrix(a: dict[str, Tensor], b: dict[str, Tensor]) -> list[list[float]]:
    """Linear CKA between every layer of ``a`` (rows) and every layer of ``b`` (columns), in dict order.

    Args:
        a, b: layer name -> ``[n, d]`` tokens; every tensor holds the same ``n`` sampled locations.
    """
    ca = [_centred(x) for x in a.values()]
    cb = [_centred(y) for y in b.values()]
    if len({x[0].shape[0] for x in ca + cb}) > 1:
        raise ValueError("cka_matrix: every layer needs the same samples (rows)")
    return [[_cka(x, y) for y in cb] for x in ca]


def mean_over_images(values: Tensor) -> tuple[float, float, int]:
    """Mean, standard deviation (ddof=0) and count over the finite per-image values (NaN: an image without pairs)."""
    v = values.to(torch.float64)
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(unbiased=False)), int(v.numel())
