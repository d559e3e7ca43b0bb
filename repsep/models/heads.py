"""Decoder parts shared by the baseline and RSSeg, and the baseline decoder's fusion.

The baseline decoder is RSSeg's decoder with every separation part removed, so that baseline -> +pathway ->
+SASM -> +DCA is a clean ablation ladder (same widths, same depth, same final head):

* :class:`TapFusion`: the K backbone taps, each projected by Conv1x1+BN and resized to stride 8, are fused
  progressively, ``x <- Stage_k(x + t_k)``, each stage 2 BasicBlocks at ``width`` channels. In the baseline x
  starts at 0 (no conv stem, "stem-free"); the RSSeg pathway starts it from a conv stem and adds the local-patch
  discrepancy ``d(x)`` at each stage (:mod:`repsep.models.rsseg.pathway`).
* ``fuse`` (Conv3x3-BN-ReLU, in the segmentor) turns the last stage into the decoder feature F; SASM, when on,
  replaces its input by a gated mix of the local and global features.
* :class:`SegHead`: upsample x2 to stride 4, concatenate a projected stride-4 feature when one exists (the RSSeg
  stem, or stage 1 of a pyramid ViT), Conv3x3-BN-ReLU, Dropout, Conv1x1 classifier.
* :class:`FCNHead`: the auxiliary (coarse) head, Conv3x3-BN-ReLU-Dropout-Conv1x1 (mmseg FCNHead, one conv).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class ConvBN(nn.Sequential):
    """Conv1x1 (no bias) + BatchNorm: the projection of a backbone tap."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """ResNet BasicBlock at constant width: relu(x + BN(Conv3x3(ReLU(BN(Conv3x3(x))))))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(width, width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn2(self.conv2(self.conv1(x))))


def resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize (align_corners=False) of ``[B, C, h, w]`` to ``size``; a no-op when already there."""
    return x if x.shape[-2:] == tuple(size) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class TapFusion(nn.Module):
    """Progressive stride-8 fusion of backbone taps: ``x <- Stage_k(x + t_k [+ d(x)])``, k = 1..K.

    Args:
        in_dims: channels of the K taps.
        width: channels of every stage.
        blocks_per_stage: BasicBlocks per stage.
        discrepancy: module computing the local-patch discrepancy d(x) (RSSeg pathway), or None (baseline).
    """

    def __init__(self, in_dims: list[int], width: int, blocks_per_stage: int = 2,
                 discrepancy: nn.Module | None = None) -> None:
        super().__init__()
        self.tap_proj = nn.ModuleList(ConvBN(d, width) for d in in_dims)
        self.stages = nn.ModuleList(
            nn.Sequential(*(BasicBlock(width) for _ in range(blocks_per_stage))) for _ in in_dims
        )
        self.discrepancy = discrepancy

    def forward(self, taps: list[torch.Tensor], size: tuple[int, int],
                init: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Taps (any strides) -> the K stage outputs ``[B, width, *size]``; ``init`` is the starting state."""
        x = init
        outs = []
        for tap, proj, stage in zip(taps, self.tap_proj, self.stages, strict=True):
            t = resize(proj(tap), size)
            if x is not None and self.discrepancy is not None:
                t = t + self.discrepancy(x)
            x = t if x is None else x + t
            x = stage(x)
            outs.append(x)
        return outs


class FCNHead(nn.Module):
    """Auxiliary / coarse head: Conv3x3-BN-ReLU, Dropout, Conv1x1 -> ``[B, num_classes, h, w]``."""

    def __init__(self, width: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = ConvBNReLU(width, width)
        self.dropout = nn.Dropout2d(dropout)
        self.cls = classifier(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.dropout(self.conv(x)))


class SegHead(nn.Module):
    """Final head: upsample x2 (stride 8 -> 4), fuse a projected stride-4 feature if given, classify.

    Args:
        width: channels of the stride-8 input and of the head's conv.
        num_classes: output classes.
        low_level_dim: channels of the stride-4 feature (None: the head has no such input).
        low_level_width: channels that feature is projected to (Conv1x1-BN-ReLU).
        dropout: dropout before the classifier.
    """

    def __init__(self, width: int, num_classes: int, low_level_dim: int | None = None, low_level_width: int = 48,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.low_proj = ConvBNReLU(low_level_dim, low_level_width, 1) if low_level_dim else None
        self.conv = ConvBNReLU(width + (low_level_width if low_level_dim else 0), width)
        self.dropout = nn.Dropout2d(dropout)
        self.cls = classifier(width, num_classes)

    def forward(self, x: torch.Tensor, low: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``[B, width, h, w]`` (+ ``low`` ``[B, C4, 2h, 2w]``) -> logits ``[B, K, 2h, 2w]``."""
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        if self.low_proj is not None:
            x = torch.cat([x, self.low_proj(resize(low, x.shape[-2:]))], dim=1)
        return self.cls(self.dropout(self.conv(x)))


def classifier(width: int, num_classes: int) -> nn.Conv2d:
    """Conv1x1 classifier, initialised N(0, 0.01) with zero bias (mmseg ``cls_seg``)."""
    conv = nn.Conv2d(width, num_classes, 1)
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)
    return conv
