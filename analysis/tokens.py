"""Which pixels each feature token covers, and the token labels and regions that follow from it.

Everything here works at the **model's input resolution**: the image after the eval resize, as the model sees it.
The model pads its input on the right/bottom to a multiple of its size divisor, so a layer of stride ``s`` has
``ceil(H / s)`` tokens per column and token ``r`` covers the input rows ``[r*s, (r+1)*s)``; the rows past the
image end are padding and count as void. The ground-truth label map (kept at the original resolution by the eval
transform) is first brought to the input resolution with nearest sampling at pixel centres (input pixel ``y``
takes label row ``floor((y + 0.5) * H0 / H)``, the correspondence of the bilinear resize that made the image), so
a token's label is computed from exactly the pixels it covers, never from a proportional grid that drifts when
``H`` is not a multiple of ``s``.

Windows (``analyze --regime slide``): the sliding windows are those of mmseg ``slide_inference``
(:func:`window_spans`), each run on its own, so a window's token ``r`` covers the input rows
``[a + r*s, a + (r+1)*s)`` with ``a`` the window start (the part past the window end is the window's padding:
void). Every cell of the image's stride-``s`` grid takes the token of **one** window (never an average, which would
blend neighbouring tokens when window starts are not multiples of ``s``): along each axis, the window whose centre
is nearest to the cell's centre (the first on a tie), and in it the token containing the cell's centre. The cell
is then labelled from that token's own pixels. In whole-image mode there is one window and the cells are the
model's tokens.

Regions: a token is a **boundary** token when its patch holds more than one real class, or when one of its four
neighbours has another majority class (majority over real classes; a neighbour with no real pixel never counts);
boundary tokens are labelled with their majority real class when real pixels cover at least half of the patch
(no purity filter: that filter drops exactly these tokens). Every other token is **interior**, labelled when its
class covers at least ``purity`` of the patch (the usual rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

REGIONS = ("interior", "boundary")


def window_spans(length: int, crop: int, step: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of the sliding windows along one axis, as mmseg ``slide_inference`` (and
    :func:`repsep.engine.inference.slide_logits`) places them: every ``step`` pixels, the last one shifted back
    to end at the border, none longer than the axis."""
    grids = max(length - crop + step - 1, 0) // step + 1
    spans = []
    for i in range(grids):
        stop = min(i * step + crop, length)
        spans.append((max(stop - crop, 0), stop))
    return spans


@dataclass(frozen=True)
class AxisCells:
    """One axis of a layer's token grid on the image: for every cell, the window (index along this axis) and the
    token in it that fill the cell, and the input pixels ``[start, stop)`` of that token that are real image
    (``stop - start <= stride``; the rest of the ``stride`` pixels is padding)."""

    window: np.ndarray
    token: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    stride: int

    def __len__(self) -> int:
        return len(self.window)


def axis_cells(length: int, stride: int, windows: list[tuple[int, int]] | None = None) -> AxisCells:
    """The ``ceil(length / stride)`` cells of one axis (see the module docstring for the window rule).

    Args:
        length: input pixels along the axis.
        stride: input pixels per token of the layer.
        windows: ``[start, stop)`` spans covering ``[0, length)`` (None: one window, the whole axis).
    """
    spans = windows or [(0, length)]
    n = -(-length // stride)
    lo = np.arange(n) * stride
    centre = (lo + np.minimum(lo + stride, length)) / 2.0
    mids = np.array([(a + b) / 2.0 for a, b in spans])
    window = np.abs(centre[:, None] - mids[None, :]).argmin(1)
    starts = np.array([a for a, _ in spans])[window]
    stops = np.array([b for _, b in spans])[window]
    tokens_in = -(-(stops - starts) // stride)
    token = np.minimum(np.floor((centre - starts) / stride).astype(np.int64), tokens_in - 1)
    first = starts + token * stride
    return AxisCells(window.astype(np.int64), token, first, np.minimum(first + stride, stops), stride)


def labels_at_input(label: Tensor, size: tuple[int, int]) -> Tensor:
    """Label maps ``[..., H0, W0]`` -> ``[..., H, W]`` by nearest sampling at pixel centres (identity when equal)."""
    h0, w0 = label.shape[-2:]
    h, w = size
    if (h0, w0) == (h, w):
        return label
    iy = ((torch.arange(h, dtype=torch.float64) + 0.5) * h0 / h).floor().long().clamp_max(h0 - 1)
    ix = ((torch.arange(w, dtype=torch.float64) + 0.5) * w0 / w).floor().long().clamp_max(w0 - 1)
    return label.index_select(-2, iy.to(label.device)).index_select(-1, ix.to(label.device))


def _pairs(cells: AxisCells) -> tuple[Tensor, Tensor]:
    """(cell index, pixel index) of every real pixel of every cell's token (a pixel can serve two cells)."""
    counts = cells.stop - cells.start
    cell = np.repeat(np.arange(len(cells)), counts)
    pixel = np.concatenate([np.arange(a, b) for a, b in zip(cells.start, cells.stop, strict=True)])
    return torch.from_numpy(cell), torch.from_numpy(pixel)


def cell_class_counts(label: Tensor, rows: AxisCells, cols: AxisCells, num_classes: int) -> Tensor:
    """Pixels of each class under every token: int64 ``[h * w, num_classes + 1]`` (row-major cells), the last
    column void (values outside ``[0, num_classes)`` and the padding part of each token's ``stride x stride``
    patch). ``label`` is one ``[H, W]`` map at the input resolution."""
    label = label.to(torch.int64).cpu()
    cls = torch.where((label >= 0) & (label < num_classes), label, torch.full_like(label, num_classes))
    cy, py = _pairs(rows)
    cx, px = _pairs(cols)
    sub = cls.index_select(0, py).index_select(1, px)
    k = num_classes + 1
    h, w = len(rows), len(cols)
    index = ((cy[:, None] * w + cx[None, :]) * k + sub).flatten()
    counts = torch.bincount(index, minlength=h * w * k).view(h * w, k)
    real = torch.from_numpy(np.outer(rows.stop - rows.start, cols.stop - cols.start)).flatten()
    counts[:, num_classes] += rows.stride * cols.stride - real
    return counts


def majority_labels(counts: Tensor, purity: float) -> Tensor:
    """Majority class of each token when it is not void and covers at least ``purity`` of the patch, else -1."""
    num_classes = counts.shape[1] - 1
    top, majority = counts.max(1)
    keep = (majority < num_classes) & (top >= purity * counts.sum(1))
    return torch.where(keep, majority, torch.full_like(majority, -1))


def region_labels(counts: Tensor, grid: tuple[int, int], purity: float) -> dict[str, Tensor]:
    """Labels of the interior and of the boundary tokens (``-1`` elsewhere), see the module docstring.

    Args:
        counts: ``[h * w, K + 1]`` from :func:`cell_class_counts`.
        grid: ``(h, w)``.

    Returns:
        ``{"interior": [h * w], "boundary": [h * w]}`` int64; a token is in at most one of them.
    """
    h, w = grid
    num_classes = counts.shape[1] - 1
    real = counts[:, :num_classes]
    real_total = real.sum(1)
    major = torch.where(real_total > 0, real.argmax(1), torch.full_like(real_total, -1)).view(h, w)
    boundary = ((real > 0).sum(1) >= 2).view(h, w)
    padded = torch.nn.functional.pad(major[None, None].float(), (1, 1, 1, 1), value=-1.0)[0, 0].long()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        nb = padded[dy:dy + h, dx:dx + w]
        boundary |= (major >= 0) & (nb >= 0) & (nb != major)
    boundary = boundary.flatten()
    major = major.flatten()
    none = torch.full_like(major, -1)
    boundary_label = torch.where(boundary & (2 * real_total >= counts.sum(1)), major, none)
    interior_label = torch.where(boundary, none, majority_labels(counts, purity))
    return {"interior": interior_label, "boundary": boundary_label}


def area_resample(fmap: Tensor, stride: int, size: tuple[int, int], cell: int) -> Tensor:
    """A stride-``stride`` map ``[B, C, h, w]`` of an input of ``size`` resampled to the grid of ``cell``-pixel
    cells (``ceil(H / cell) x ceil(W / cell)``): each new cell is the mean over its real pixels of the token
    covering each pixel (exact pixel-area weights, separable)."""

    def weights(length: int) -> Tensor:
        a = np.arange(-(-length // cell)) * cell
        b = np.arange(-(-length // stride)) * stride
        lo = np.maximum(a[:, None], b[None, :])
        hi = np.minimum(np.minimum(a[:, None] + cell, length), np.minimum(b[None, :] + stride, length))
        m = torch.from_numpy(np.clip(hi - lo, 0, None).astype(np.float64))
        return m / m.sum(1, keepdim=True)

    wy, wx = weights(size[0]), weights(size[1])
    out = torch.einsum("gh,bchw,fw->bcgf", wy, fmap.to(torch.float64), wx)
    return out.to(fmap.dtype)
