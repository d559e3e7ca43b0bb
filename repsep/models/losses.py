"""Pixel cross-entropy with an ignore label and optional online hard example mining (OHEM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ohem_keep(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, thresh: float = 0.7,
              min_kept: int = 100000) -> torch.Tensor:
    """The pixels mmseg 1.x ``OHEMPixelSampler`` (with ``thresh``) selects: bool ``[B, H, W]``.

    Over the labelled pixels of the whole batch, with ``p`` the softmax probability of the ground-truth class
    sorted ascending: ``threshold = max(thresh, p[min(min_kept * B, n - 1)])`` (``min_kept`` is per image, the
    index is 0-based, so at least ``min_kept * B`` pixels are kept when there are more), and the kept pixels are
    the labelled ones with ``p < threshold``. No labelled pixel: nothing is kept.

    Args:
        logits: ``[B, K, H, W]``.
        target: ``[B, H, W]`` int64, ``ignore_index`` for unlabelled pixels.
    """
    valid = target != ignore_index
    with torch.no_grad():
        prob = logits.detach().float().softmax(dim=1)
        prob = prob.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)
        sorted_prob = prob[valid].sort().values
        if sorted_prob.numel() == 0:
            return valid
        index = min(min_kept * target.shape[0], sorted_prob.numel() - 1)
        threshold = max(float(sorted_prob[index]), thresh)
        return valid & (prob < threshold)


def pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, ohem: bool = False,
                        ohem_thresh: float = 0.7, ohem_min_kept: int = 100000) -> torch.Tensor:
    """Mean cross-entropy over the counted pixels (0 when none counts).

    Counted pixels: every labelled pixel, or with ``ohem`` those :func:`ohem_keep` selects (mmseg 1.x
    ``OHEMPixelSampler`` semantics). The mean is over the counted pixels (mmseg divides the sampler-weighted sum by
    all pixels of the batch, a constant factor per batch size and crop).

    Args:
        logits: ``[B, K, H, W]``.
        target: ``[B, H, W]`` int64, ``ignore_index`` for unlabelled pixels.
    """
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    keep = ohem_keep(logits, target, ignore_index, ohem_thresh, ohem_min_kept) if ohem else target != ignore_index
    return (ce * keep).sum() / keep.sum().clamp(min=1)
