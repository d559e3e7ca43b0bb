"""Pixel cross-entropy with an ignore label and optional online hard example mining (OHEM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, ohem: bool = False,
                        ohem_thresh: float = 0.7, ohem_min_kept: int = 100000) -> torch.Tensor:
    """Mean cross-entropy over labelled pixels (0 when none is labelled).

    OHEM follows mmseg's ``OHEMPixelSampler``: keep the pixels whose ground-truth probability is below
    ``max(ohem_thresh, p_(min_kept))`` (the ``min_kept``-th smallest probability), so at least ``min_kept`` of the
    hardest pixels count.

    Args:
        logits: ``[B, K, H, W]``.
        target: ``[B, H, W]`` int64, ``ignore_index`` for unlabelled pixels.
    """
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    keep = target != ignore_index
    if ohem and keep.any():
        with torch.no_grad():
            prob = logits.softmax(dim=1).gather(1, torch.where(keep, target, 0).unsqueeze(1)).squeeze(1)
            valid_prob = prob[keep].sort().values
            k = min(ohem_min_kept, valid_prob.numel()) - 1
            threshold = max(ohem_thresh, valid_prob[max(k, 0)].item())
            keep = keep & (prob < threshold)
    return (ce * keep).sum() / keep.sum().clamp(min=1)
