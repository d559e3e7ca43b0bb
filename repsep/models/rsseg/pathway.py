"""RSSeg's decoupled two-pathway network: the local pathway's stem and local-patch discrepancy. RECONSTRUCTION.

The ViT is pathway 1 (global) and is left untouched: nothing is fed back into its tokens ("decoupled", unlike
ViT-Adapter's injector). Pathway 2 (local) is a stride-8 conv network (DDRNet-like) that

1. starts from a conv stem on the image (:class:`ConvStem`, ViT-Adapter's SpatialPriorModule cut at stride 8),
   or, for pyramid ViTs, from stage 1 of the backbone (:class:`PyramidStem`);
2. at each of K stages receives a ViT tap (Conv1x1+BN, resized to stride 8) and the local-patch discrepancy of
   its own state, ``x <- Stage_k(x + t_k + d(x))`` with ``d(x) = x - AvgPool3x3(x)`` (:class:`LocalDiscrepancy`),
   and passes it down to the next stage.

The stage stack is :class:`repsep.models.heads.TapFusion`, shared with the baseline decoder (which has neither
stem nor discrepancy), so switching the pathway on adds exactly ``stem`` and ``fusion.discrepancy``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repsep.models.heads import ConvBNReLU


class LocalDiscrepancy(nn.Module):
    """High-pass local-patch discrepancy ``d(x)`` of ``[B, C, H, W]`` (borders replicate-padded).

    Args:
        channels: C (used by the learnable mode).
        mode: ``avgpool``: ``x - AvgPool3x3(x)`` (parameter-free); ``laplacian``: a learnable depthwise 3x3 conv
            initialised to the same kernel (centre 8/9, neighbours -1/9), so both modes agree at initialisation.
    """

    def __init__(self, channels: int, mode: str = "avgpool") -> None:
        super().__init__()
        self.mode = mode
        if mode == "laplacian":
            self.conv = nn.Conv2d(channels, channels, 3, padding=0, groups=channels, bias=False)
            kernel = torch.full((3, 3), -1.0 / 9.0)
            kernel[1, 1] = 8.0 / 9.0
            with torch.no_grad():
                self.conv.weight.copy_(kernel.expand(channels, 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        if self.mode == "laplacian":
            return self.conv(padded)
        return x - F.avg_pool2d(padded, 3, stride=1)


class ConvStem(nn.Module):
    """ViT-Adapter SpatialPriorModule up to stride 8 (image -> stride 4 and stride 8 features).

    conv3x3 s2 -> conv3x3 -> conv3x3 -> maxpool s2 (stride 4, ``stem_width``) -> conv3x3 s2 (stride 8, ``width``),
    each conv with BN and ReLU.
    """

    def __init__(self, stem_width: int, width: int) -> None:
        super().__init__()
        self.stride4 = nn.Sequential(
            ConvBNReLU(3, stem_width, 3, 2),
            ConvBNReLU(stem_width, stem_width),
            ConvBNReLU(stem_width, stem_width),
            nn.MaxPool2d(3, 2, 1),
        )
        self.stride8 = ConvBNReLU(stem_width, width, 3, 2)
        self.low_level_dim = stem_width

    def forward(self, image: torch.Tensor, stage_maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, 3, H, W]`` -> (``[B, stem_width, H/4, W/4]``, ``[B, width, H/8, W/8]``)."""
        del stage_maps
        c4 = self.stride4(image)
        return c4, self.stride8(c4)


class PyramidStem(nn.Module):
    """For pyramid ViTs: the local pathway starts from backbone stage 1 (stride 4) via Conv3x3 s2 + BN + ReLU."""

    def __init__(self, stage1_dim: int, width: int) -> None:
        super().__init__()
        self.stride8 = ConvBNReLU(stage1_dim, width, 3, 2)

    def forward(self, image: torch.Tensor, stage_maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage maps (stride 4 first) -> (stage-1 map, ``[B, width, H/8, W/8]``)."""
        del image
        return stage_maps[0], self.stride8(stage_maps[0])
