"""Stream a model's named feature maps over a dataset split and accumulate the over-smoothness statistics.

Memory stays bounded: per-image similarity statistics are computed on the fly (a few floats per image and layer),
and only a class-balanced sample of at most ``per_class`` tokens per class and layer is kept.

Token labels: the ground-truth label map is pooled onto each feature map's ``h x w`` grid by counting pixel areas
per class (pixel ``(y, x)`` falls in cell ``(y*h//H, x*w//W)``, i.e. exact patches when the sizes divide). Void is
counted as one more class; a token keeps the majority class when that class is not void and covers at least
``purity`` of the cell, else it is unlabelled (-1).

Sampled locations depend only on the seed, the image id, the grid and the label map, never on the model: every
location gets a priority drawn from ``np.random.default_rng((seed, hash(image id), h, w))``, and the sample of a
class is the ``per_class`` labelled locations with the smallest priorities over the whole split (bottom-k
sampling: uniform without replacement, independent of image order). Two models with equal grids therefore keep
identical locations.

CKA needs the same rows for layers of any resolution, so every map is also area-resampled to a common grid
(label-map size / ``cka_stride``) and sampled there in the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from analysis.similarity import cosine_stats, high_frequency_ratio, mean_over_images, residual_ratio

SIMILARITY_METRICS = ("abs_cos", "cos", "same_cos", "diff_cos", "residual_ratio", "hf_ratio")


def patch_labels(label: Tensor, grid: tuple[int, int], num_classes: int, purity: float = 0.75) -> Tensor:
    """Majority class of every grid cell, or -1 when the cell is impure or mostly void.

    Args:
        label: ``[H, W]`` int map; values outside ``[0, num_classes)`` (e.g. 255) are void.
        grid: ``(h, w)`` cells, ``h <= H`` and ``w <= W``.
        num_classes: number of real classes.
        purity: smallest area fraction of the majority class for the cell to be kept.

    Returns:
        int64 ``[h * w]`` in row-major cell order.
    """
    hgt, wid = label.shape
    h, w = grid
    if h > hgt or w > wid:
        raise ValueError(f"grid {grid} is finer than the label map {tuple(label.shape)}")
    label = label.to(torch.int64)
    cls = torch.where((label >= 0) & (label < num_classes), label, torch.full_like(label, num_classes))
    cy = torch.arange(hgt, device=label.device) * h // hgt
    cx = torch.arange(wid, device=label.device) * w // wid
    cell = cy[:, None] * w + cx[None, :]
    counts = torch.bincount((cell * (num_classes + 1) + cls).flatten(), minlength=h * w * (num_classes + 1))
    counts = counts.view(h * w, num_classes + 1)
    top, majority = counts.max(1)
    keep = (majority < num_classes) & (top >= purity * counts.sum(1))
    return torch.where(keep, majority, torch.full_like(majority, -1))


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
    the class-balanced sample at the layer's own grid, sorted by (class, priority); ``cka_tokens`` ``[n', D]``
    and ``cka_locations``: the sample on the common CKA grid; ``grid``: the layer's ``(h, w)``.
    """

    similarity: dict[str, tuple[float, float, int]]
    tokens: Tensor
    labels: Tensor
    locations: Tensor
    cka_tokens: Tensor
    cka_locations: Tensor
    grid: tuple[int, int]


class FeatureStats:
    """Accumulates similarity statistics and token samples of every selected layer over a stream of batches.

    Args:
        num_classes: number of real classes of the label maps.
        layers: feature names to keep (None: every feature the model returns, in its order).
        purity: token label purity threshold.
        per_class: tokens kept per class and layer.
        seed: sampling seed.
        max_tokens: cosine statistics of a map with more tokens use its ``max_tokens`` lowest-priority tokens.
        hf_cutoff: low-pass radius of :func:`analysis.similarity.high_frequency_ratio`.
        cka_stride: label-map pixels per cell of the common CKA grid.
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
        self.cka_samples: dict[str, ClassReservoir] = {}
        self.grids: dict[str, tuple[int, int]] = {}
        self.num_images = 0

    def _grid_info(self, labels: Tensor, ids: Sequence[str], grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
        lab = torch.stack([patch_labels(lbl, grid, self.num_classes, self.purity) for lbl in labels.cpu()])
        prio = torch.stack([location_priorities(i, grid, self.seed) for i in ids])
        return lab, prio

    def update(self, features: dict[str, Tensor], labels: Tensor, ids: Sequence[str]) -> None:
        """Add one batch: ``features`` name -> ``[B, C, h, w]``, ``labels`` ``[B, H, W]`` at the input size."""
        names = self.layers if self.layers is not None else list(features)
        missing = [n for n in names if n not in features]
        if missing:
            raise KeyError(f"features {missing} not produced by the model (it gives {list(features)})")
        b, hgt, wid = labels.shape
        image_index = torch.arange(self.num_images, self.num_images + b)
        cka_grid = (max(1, hgt // self.cka_stride), max(1, wid // self.cka_stride))
        cache: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
        for name in names:
            fmap = features[name].detach().float().cpu()
            grid = (fmap.shape[-2], fmap.shape[-1])
            if grid not in cache:
                cache[grid] = self._grid_info(labels, ids, grid)
            lab, prio = cache[grid]
            self.grids[name] = grid
            self._similarity(name, fmap, lab, prio)
            self._sample(self.samples, name, fmap, lab, prio, image_index)
            if cka_grid not in cache:
                cache[cka_grid] = self._grid_info(labels, ids, cka_grid)
            lab_c, prio_c = cache[cka_grid]
            self._sample(self.cka_samples, name, F.adaptive_avg_pool2d(fmap, cka_grid), lab_c, prio_c, image_index)
        self.num_images += b

    def _similarity(self, name: str, fmap: Tensor, lab: Tensor, prio: Tensor) -> None:
        tokens = fmap.flatten(2).transpose(1, 2)  # [B, N, C]
        sub_tokens, sub_lab = tokens, lab
        if tokens.shape[1] > self.max_tokens:
            idx = prio.argsort(1)[:, :self.max_tokens]
            sub_tokens = tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[2]))
            sub_lab = lab.gather(1, idx)
        stats = cosine_stats(sub_tokens, sub_lab) if tokens.shape[1] >= 2 else {}
        stats["residual_ratio"] = residual_ratio(tokens)
        stats["hf_ratio"] = high_frequency_ratio(fmap, self.hf_cutoff)
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
        out = {}
        for name, values in self.values.items():
            sim = {m: mean_over_images(torch.cat(v) if v else torch.empty(0)) for m, v in values.items()}
            res, cka = self.samples[name], self.cka_samples[name]
            empty = torch.empty(0, 0)
            out[name] = LayerResult(sim, res.features if res.features is not None else empty, res.labels,
                                    res.locations, cka.features if cka.features is not None else empty,
                                    cka.locations, self.grids[name])
        return out


@torch.no_grad()
def collect(model: torch.nn.Module, batches: Iterable[dict], stats: FeatureStats, device: str = "cpu",
            progress: bool = True, desc: str = "features") -> dict[str, LayerResult]:
    """Run ``model.forward_features`` over ``batches`` (dicts with ``image`` ``[B, 3, H, W]``, ``label``
    ``[B, H, W]``, ``id`` list of str) and return ``stats.result()``."""
    from tqdm import tqdm

    model.eval().to(device)
    for batch in tqdm(batches, desc=desc, disable=not progress, leave=False):
        feats = model.forward_features(batch["image"].to(device))
        stats.update(feats, batch["label"], list(batch["id"]))
    return stats.result()
