"""Stream a model's named feature maps over a dataset split and accumulate the over-smoothness statistics.

Memory stays bounded: per-image similarity statistics are computed on the fly (a few floats per image and layer),
and only a class-balanced sample of at most ``per_class`` tokens per class and layer is kept (one sample of all
labelled tokens, one of the interior and one of the boundary tokens).

Token labels and regions: :mod:`analysis.tokens` (each token is labelled from exactly the input pixels it covers;
boundary tokens are kept apart from interior ones). Regimes: ``whole`` runs the model once on the whole image;
``slide`` runs it on the sliding windows of the evaluation (at the training crop) and fills each cell of the
image's token grid from one window (:func:`analysis.tokens.axis_cells`).

Sampled locations depend only on the seed, the image id, the grid and the label map, never on the model: every
location gets a priority drawn from ``np.random.default_rng((seed, hash(image id), h, w))``, and the sample of a
class is the ``per_class`` labelled locations with the smallest priorities over the whole split (bottom-k
sampling: uniform without replacement, independent of image order). Two models with equal grids therefore keep
identical locations.

CKA needs the same rows for layers of any resolution, so every map is also resampled by pixel area to a common
grid of ``cka_stride``-pixel cells of the input and sampled there in the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from analysis.similarity import cosine_stats, high_frequency_ratio, mean_over_images, residual_ratio
from analysis.tokens import (
    REGIONS,
    AxisCells,
    area_resample,
    axis_cells,
    cell_class_counts,
    labels_at_input,
    majority_labels,
    region_labels,
    window_spans,
)

SIMILARITY_METRICS = ("abs_cos", "cos", "same_cos", "diff_cos", "residual_ratio", "hf_ratio",
                      "same_cos_interior", "diff_cos_interior", "same_cos_boundary", "diff_cos_boundary",
                      "boundary_share")
REGIMES = ("whole", "slide")


def patch_labels(label: Tensor, stride: int, num_classes: int, purity: float = 0.75) -> Tensor:
    """Majority class of every stride-``stride`` token of an input-resolution ``[H, W]`` label map (whole image,
    ``ceil(H / stride) x ceil(W / stride)`` tokens, padding void), or -1 when impure or mostly void: int64
    ``[h * w]`` in row-major order."""
    rows, cols = axis_cells(label.shape[0], stride), axis_cells(label.shape[1], stride)
    return majority_labels(cell_class_counts(label, rows, cols, num_classes), purity)


def location_priorities(image_id: str, grid: tuple[int, int], seed: int) -> Tensor:
    """Model-independent random priority in [0, 1) of every cell of ``grid`` for one image: float64 ``[h * w]``."""
    digest = int.from_bytes(hashlib.sha256(image_id.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, digest & 0xFFFFFFFF, digest >> 32, grid[0], grid[1]])
    return torch.from_numpy(rng.random(grid[0] * grid[1]))


class ClassReservoir:
    """Bottom-k sample per class over a stream: keeps the ``per_class`` candidates of every class with the smallest
    priorities, with their features and ``(image index, token index)`` locations."""

    def __init__(self, per_class: int) -> None:
        self.per_class = per_class
        self.priority = torch.empty(0, dtype=torch.float64)
        self.labels = torch.empty(0, dtype=torch.int64)
        self.locations = torch.empty(0, 2, dtype=torch.int64)
        self.features: Tensor | None = None

    def offer(self, priority: Tensor, labels: Tensor, locations: Tensor, features: Tensor) -> None:
        """Add candidates: ``priority [m]``, ``labels [m]``, ``locations [m, 2]``, ``features [m, D]``."""
        features = features.detach().to("cpu", torch.float32)
        priority = torch.cat([self.priority, priority])
        labels = torch.cat([self.labels, labels])
        locations = torch.cat([self.locations, locations])
        features = features if self.features is None else torch.cat([self.features, features])
        order = np.lexsort((priority.numpy(), labels.numpy()))  # by class, then by priority
        sorted_labels = labels.numpy()[order]
        rank = np.arange(len(order)) - np.searchsorted(sorted_labels, sorted_labels, side="left")
        keep = torch.from_numpy(order[rank < self.per_class])
        self.priority, self.labels = priority[keep], labels[keep]
        self.locations, self.features = locations[keep], features[keep]


@dataclass
class LayerResult:
    """What one layer of one model leaves after the stream.

    ``similarity``: metric -> (mean over images, std over images, number of images with a value);
    ``tokens`` ``[n, D]`` float32, ``labels`` ``[n]`` and ``locations`` ``[n, 2]`` (image index, token index):
    the class-balanced sample of labelled tokens at the layer's own grid, sorted by (class, priority);
    ``regions``: the same for the interior and the boundary tokens, region -> (tokens, labels, locations);
    ``cka_tokens`` ``[n', D]`` and ``cka_locations``: the sample on the common CKA grid; ``grid``: the layer's
    ``(h, w)`` for the last image; ``stride``: input pixels per token.
    """

    similarity: dict[str, tuple[float, float, int]]
    tokens: Tensor
    labels: Tensor
    locations: Tensor
    cka_tokens: Tensor
    cka_locations: Tensor
    grid: tuple[int, int]
    stride: int = 0
    regions: dict[str, tuple[Tensor, Tensor, Tensor]] = field(default_factory=dict)


def _whole_cells(size: tuple[int, int], stride: int) -> tuple[AxisCells, AxisCells]:
    return axis_cells(size[0], stride), axis_cells(size[1], stride)


class FeatureStats:
    """Accumulates similarity statistics and token samples of every selected layer over a stream of batches.

    Args:
        num_classes: number of real classes of the label maps.
        layers: feature names to keep (None: every feature the model returns, in its order).
        purity: token label purity threshold (all labelled tokens and interior tokens).
        per_class: tokens kept per class and layer (for each of: all labelled, interior, boundary).
        seed: sampling seed.
        max_tokens: cosine statistics of a map with more tokens use its ``max_tokens`` lowest-priority tokens.
        hf_cutoff: low-pass radius of :func:`analysis.similarity.high_frequency_ratio`.
        cka_stride: input pixels per cell of the common CKA grid.
    """

    def __init__(self, num_classes: int, layers: Sequence[str] | None = None, *, purity: float = 0.75,
                 per_class: int = 200, seed: int = 0, max_tokens: int = 4096, hf_cutoff: float = 0.5,
                 cka_stride: int = 16) -> None:
        self.num_classes = num_classes
        self.layers = list(layers) if layers is not None else None
        self.purity, self.per_class, self.seed = purity, per_class, seed
        self.max_tokens, self.hf_cutoff, self.cka_stride = max_tokens, hf_cutoff, cka_stride
        self.values: dict[str, dict[str, list[Tensor]]] = {}
        self.samples: dict[str, ClassReservoir] = {}
        self.region_samples: dict[str, dict[str, ClassReservoir]] = {r: {} for r in REGIONS}
        self.cka_samples: dict[str, ClassReservoir] = {}
        self.grids: dict[str, tuple[int, int]] = {}
        self.strides: dict[str, int] = {}
        self.num_images = 0

    def _labels(self, labels: Tensor, ids: Sequence[str], rows: AxisCells,
                cols: AxisCells) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """(all labels ``[B, N]``, region -> labels ``[B, N]``, priorities ``[B, N]``) of one grid."""
        grid = (len(rows), len(cols))
        counts = [cell_class_counts(lbl, rows, cols, self.num_classes) for lbl in labels.cpu()]
        lab = torch.stack([majority_labels(c, self.purity) for c in counts])
        per = [region_labels(c, grid, self.purity) for c in counts]
        regions = {r: torch.stack([p[r] for p in per]) for r in REGIONS}
        prio = torch.stack([location_priorities(i, grid, self.seed) for i in ids])
        return lab, regions, prio

    def update(self, features: dict[str, Tensor], labels: Tensor, ids: Sequence[str],
               cells: dict[str, tuple[AxisCells, AxisCells]] | None = None) -> None:
        """Add one batch.

        Args:
            features: name -> ``[B, C, h, w]`` token grids of the image.
            labels: ``[B, H, W]`` label maps at the model's input resolution.
            ids: image ids.
            cells: name -> (row cells, column cells) saying which pixels each token covers
                (:func:`analysis.tokens.axis_cells`); None: whole-image tokens of stride ``H // h`` (exact only).
        """
        names = self.layers if self.layers is not None else list(features)
        missing = [n for n in names if n not in features]
        if missing:
            raise KeyError(f"features {missing} not produced by the model (it gives {list(features)})")
        b, hgt, wid = labels.shape
        image_index = torch.arange(self.num_images, self.num_images + b)
        cache: dict[tuple, tuple[Tensor, dict[str, Tensor], Tensor]] = {}
        cka_rows, cka_cols = _whole_cells((hgt, wid), self.cka_stride)
        for name in names:
            fmap = features[name].detach().float().cpu()
            grid = (fmap.shape[-2], fmap.shape[-1])
            if cells is not None and name in cells:
                rows, cols = cells[name]
            else:
                rows, cols = _whole_cells((hgt, wid), max(1, hgt // grid[0]))
            if (len(rows), len(cols)) != grid:
                raise ValueError(f"{name}: grid {grid} does not match the cells {len(rows)}x{len(cols)}")
            key = (rows.stride, tuple(rows.start), tuple(cols.start), tuple(rows.stop), tuple(cols.stop))
            if key not in cache:
                cache[key] = self._labels(labels, ids, rows, cols)
            lab, regions, prio = cache[key]
            self.grids[name], self.strides[name] = grid, rows.stride
            self._similarity(name, fmap, lab, regions, prio)
            self._sample(self.samples, name, fmap, lab, prio, image_index)
            for region in REGIONS:
                self._sample(self.region_samples[region], name, fmap, regions[region], prio, image_index)
            if "cka" not in cache:
                cache["cka"] = self._labels(labels, ids, cka_rows, cka_cols)
            lab_c, _, prio_c = cache["cka"]
            fmap_c = area_resample(fmap, rows.stride, (hgt, wid), self.cka_stride)
            self._sample(self.cka_samples, name, fmap_c, lab_c, prio_c, image_index)
        self.num_images += b

    def _similarity(self, name: str, fmap: Tensor, lab: Tensor, regions: dict[str, Tensor], prio: Tensor) -> None:
        tokens = fmap.flatten(2).transpose(1, 2)  # [B, N, C]
        sub_tokens, sub_lab, sub_regions = tokens, lab, regions
        if tokens.shape[1] > self.max_tokens:
            idx = prio.argsort(1)[:, :self.max_tokens]
            sub_tokens = tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[2]))
            sub_lab = lab.gather(1, idx)
            sub_regions = {r: v.gather(1, idx) for r, v in regions.items()}
        stats = cosine_stats(sub_tokens, sub_lab, sub_regions) if tokens.shape[1] >= 2 else {}
        stats["residual_ratio"] = residual_ratio(tokens)
        stats["hf_ratio"] = high_frequency_ratio(fmap, self.hf_cutoff)
        n_boundary = (regions["boundary"] >= 0).sum(1).double()
        n_labelled = n_boundary + (regions["interior"] >= 0).sum(1).double()
        stats["boundary_share"] = torch.where(n_labelled > 0, n_boundary / n_labelled.clamp_min(1),
                                              torch.full_like(n_labelled, float("nan")))
        store = self.values.setdefault(name, {m: [] for m in SIMILARITY_METRICS})
        for metric in SIMILARITY_METRICS:
            if metric in stats:
                store[metric].append(stats[metric])

    def _sample(self, store: dict[str, ClassReservoir], name: str, fmap: Tensor, lab: Tensor, prio: Tensor,
                image_index: Tensor) -> None:
        tokens = fmap.flatten(2).transpose(1, 2)
        keep = lab >= 0
        img, tok = keep.nonzero(as_tuple=True)
        locations = torch.stack([image_index[img], tok], 1)
        store.setdefault(name, ClassReservoir(self.per_class)).offer(prio[keep], lab[keep], locations, tokens[keep])

    def result(self) -> dict[str, LayerResult]:
        """Per layer (in first-seen order): the summarised similarity statistics and the token samples."""
        empty = torch.empty(0, 0)

        def feats(res: ClassReservoir) -> Tensor:
            return res.features if res.features is not None else empty

        out = {}
        for name, values in self.values.items():
            sim = {m: mean_over_images(torch.cat(v) if v else torch.empty(0)) for m, v in values.items()}
            res, cka = self.samples[name], self.cka_samples[name]
            regions = {r: (feats(s[name]), s[name].labels, s[name].locations)
                       for r, s in self.region_samples.items()}
            out[name] = LayerResult(sim, feats(res), res.labels, res.locations, feats(cka), cka.locations,
                                    self.grids[name], self.strides[name], regions)
        return out


@torch.no_grad()
def layer_strides(model: torch.nn.Module, device: str | torch.device = "cpu") -> dict[str, int]:
    """Input pixels per token of every feature ``model.forward_features`` returns (in its order), measured on a
    zero image whose sides are a multiple of the model's ``size_divisor`` (so no padding is involved)."""
    divisor = int(getattr(model, "size_divisor", 32))
    side = divisor * max(1, -(-64 // divisor))
    feats = model.forward_features(torch.zeros(1, 3, side, side, device=device))
    strides = {}
    for name, t in feats.items():
        h, w = t.shape[-2:]
        if side % h or side % w or side // h != side // w:
            raise ValueError(f"{name}: grid {h}x{w} of a {side}x{side} input is not a whole stride")
        strides[name] = side // h
    return strides


def image_features(model: torch.nn.Module, images: Tensor, strides: dict[str, int], names: Sequence[str], *,
                   regime: str = "whole", crop: tuple[int, int] | None = None,
                   stride: tuple[int, int] | None = None) -> tuple[dict[str, Tensor],
                                                                   dict[str, tuple[AxisCells, AxisCells]]]:
    """Token grids of ``images`` ``[B, 3, H, W]`` in one regime, with the cells saying which pixels each covers.

    ``whole``: one forward pass. ``slide``: one pass per window of ``crop`` every ``stride`` (h, w; the windows of
    the evaluation), each cell of the image grid filled from one window (:func:`analysis.tokens.axis_cells`).
    An image no larger than the crop is one window, so both regimes then give identical features.
    """
    size = tuple(images.shape[-2:])
    if regime == "whole":
        spans_y, spans_x = [(0, size[0])], [(0, size[1])]
    elif regime == "slide":
        if crop is None or stride is None:
            raise ValueError("slide regime needs crop and stride")
        spans_y, spans_x = window_spans(size[0], crop[0], stride[0]), window_spans(size[1], crop[1], stride[1])
    else:
        raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}")
    cells = {n: (axis_cells(size[0], strides[n], spans_y), axis_cells(size[1], strides[n], spans_x)) for n in names}
    out: dict[str, Tensor] = {}
    for i, (y1, y2) in enumerate(spans_y):
        for j, (x1, x2) in enumerate(spans_x):
            feats = model.forward_features(images[:, :, y1:y2, x1:x2])
            for n in names:
                rows, cols = cells[n]
                ri, cj = np.flatnonzero(rows.window == i), np.flatnonzero(cols.window == j)
                if len(ri) == 0 or len(cj) == 0:
                    continue
                f = feats[n]
                if n not in out:
                    out[n] = f.new_zeros((f.shape[0], f.shape[1], len(rows), len(cols)))
                dev = f.device
                ri_t, cj_t = torch.from_numpy(ri).to(dev), torch.from_numpy(cj).to(dev)
                tr, tc = torch.from_numpy(rows.token[ri]).to(dev), torch.from_numpy(cols.token[cj]).to(dev)
                out[n][:, :, ri_t[:, None], cj_t[None, :]] = f[:, :, tr[:, None], tc[None, :]]
    return out, cells


@torch.no_grad()
def collect(model: torch.nn.Module, batches: Iterable[dict], stats: FeatureStats, device: str = "cpu",
            progress: bool = True, desc: str = "features", *, regime: str = "whole",
            crop: tuple[int, int] | None = None, stride: tuple[int, int] | None = None,
            total: int | None = None, precision: str = "fp32") -> dict[str, LayerResult]:
    """Run the model over ``batches`` (dicts with ``image`` ``[B, 3, H, W]``, ``label`` ``[B, H0, W0]`` at the
    dataset's resolution, ``id`` list of str) in ``regime`` (see :func:`image_features`) and return
    ``stats.result()``. Labels are brought to the input resolution (:func:`analysis.tokens.labels_at_input`).
    ``precision``: the forward passes' autocast precision; features are cast back to fp32 before any statistic
    (:mod:`repsep.engine.precision`)."""
    from repsep.engine.precision import with_precision
    from repsep.progress import progress_bar

    model.eval().to(device)
    strides = layer_strides(model, device)
    names = stats.layers if stats.layers is not None else list(strides)
    missing = [n for n in names if n not in strides]
    if missing:
        raise KeyError(f"features {missing} not produced by the model (it gives {list(strides)})")
    for batch in progress_bar(batches, wanted=progress, desc=desc, leave=False, total=total):
        images = batch["image"].to(device)
        feats, cells = image_features(with_precision(model, precision, images.device.type), images, strides, names,
                                      regime=regime, crop=crop, stride=stride)
        labels = labels_at_input(batch["label"], tuple(images.shape[-2:]))
        stats.update(feats, labels, list(batch["id"]), cells)
    return stats.result()
