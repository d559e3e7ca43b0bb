"""Parts shared by the recognisable baselines: conv units, the classifier, the FCN head, token LayerNorm.

Layouts follow mmsegmentation 1.x (``ConvModule`` = conv -> BN -> ReLU, bias only without a norm; ``cls_seg`` =
Dropout2d -> Conv1x1), written as plain ``nn.Sequential`` so that state-dict keys are ``<unit>.0.weight`` (conv)
and ``<unit>.1.*`` (BatchNorm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repsep.models.heads import ConvBNReLU


def conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int = 3) -> nn.Sequential:
    """Conv (no bias, padding k//2) -> BN -> ReLU."""
    return ConvBNReLU(in_ch, out_ch, kernel_size)


def plain_conv(in_ch: int, out_ch: int, kernel_size: int) -> nn.Sequential:
    """Conv with bias and no norm/activation, wrapped so its keys read ``.0.weight`` / ``.0.bias``."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2))


def upsample(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear resize by ``scale`` (align_corners=False), sampled as F.interpolate does with a scale factor."""
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def resize_to(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize to ``size`` (align_corners=False)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class Classifier(nn.Module):
    """Dropout2d (when > 0) -> Conv1x1 to ``num_classes`` (mmseg ``cls_seg``; weights N(0, 0.01))."""

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv = nn.Conv2d(channels, num_classes, 1)
        nn.init.normal_(self.conv.weight, std=0.01)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.dropout(x))


class TokenNorm(nn.Module):
    """LayerNorm over the channels of a ``[B, C, h, w]`` map (tokens), eps 1e-6."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class FCNHead(nn.Module):
    """FCN head (mmseg ``FCNHead``, ``concat_input=False``): ``num_convs`` Conv-BN-ReLU, then the classifier.

    Args:
        in_channels: input channels.
        channels: channels of the convs (must equal ``in_channels`` when ``num_convs`` is 0).
        num_classes: output classes.
        num_convs: Conv-BN-ReLU units (0: the classifier alone, Segmenter-linear / SETR-MLA auxiliaries).
        kernel_size: conv kernel.
        dropout: dropout before the classifier.
        in_index: which input feature the head reads.
    """

    def __init__(self, in_channels: int, channels: int, num_classes: int, num_convs: int = 1, kernel_size: int = 3,
                 dropout: float = 0.1, in_index: int = -1) -> None:
        super().__init__()
        if num_convs == 0:
            channels = in_channels
        units = [conv_bn_relu(in_channels if i == 0 else channels, channels, kernel_size) for i in range(num_convs)]
        self.convs = nn.Sequential(*units) if units else nn.Identity()
        self.cls = Classifier(channels, num_classes, dropout)
        self.in_index = in_index

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.cls(self.convs(feats[self.in_index]))


class AuxHeads(nn.Module):
    """Training-only auxiliary heads, each on its own input feature; :meth:`forward` returns their logits."""

    def __init__(self, heads: list[nn.Module]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [head(feats) for head in self.heads]
