"""Seeded subsets spread over a split: ``--num-images N`` takes N images from every stratum (city / scene folder)
in proportion, never simply the first N (which on Cityscapes val are all Frankfurt)."""

from __future__ import annotations

import numpy as np

from repsep.data.base import SegmentationDataset


def subset_indices(dataset: SegmentationDataset, num_images: int | None, seed: int = 0) -> list[int]:
    """Sorted indices of ``num_images`` images of ``dataset`` (all of them when None or >= its length).

    Stratified by :meth:`SegmentationDataset.group_of`: each stratum gets ``floor(n * share)`` images, the
    remaining ones go to the strata with the largest fractional parts (ties: the stratum order); inside a
    stratum the images are a seeded random choice. The same (dataset, n, seed) always gives the same indices.
    """
    total = len(dataset)
    if num_images is None or num_images >= total:
        return list(range(total))
    groups: dict[str, list[int]] = {}
    for index in range(total):
        groups.setdefault(dataset.group_of(index), []).append(index)
    names = sorted(groups)
    exact = np.array([num_images * len(groups[g]) / total for g in names])
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(names)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[: num_images - int(counts.sum())]:
        counts[k] += 1
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for name, count in zip(names, counts, strict=True):
        members = groups[name]
        picks = rng.permutation(len(members))[:count]
        chosen.extend(members[i] for i in picks)
    return sorted(chosen)
