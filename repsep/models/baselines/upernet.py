"""UperNet on a plain ViT (mmseg ``configs/vit``: Xiao et al., UPerNet, arXiv 1807.10221; ViT, arXiv 2010.11929).

ViT taps (blocks 3, 6, 9, 12 of ViT-B) -> :class:`MultiLevelNeck` (1x1 lateral convs, bilinear x4 / x2 / x1 / x0.5,
3x3 convs, no norm) -> :class:`UPerHead` (pyramid pooling 1/2/3/6 on the coarsest map, FPN top-down, fuse) -> the
classifier; an FCN auxiliary head on the last neck output during training (weight 0.4).
"""

from __future__ import annotations

import torch
from torch import nn

from repsep.models.baselines.parts import Classifier, conv_bn_relu, plain_conv, resize_to, upsample

NECK_SCALES = (4.0, 2.0, 1.0, 0.5)


class MultiLevelNeck(nn.Module):
    """ViT taps (one stride) -> a 4-level pyramid: lateral 1x1 conv, bilinear resize by ``scales``, 3x3 conv.

    Args:
        in_channels: channels of each tap.
        out_channels: channels of every level.
        scales: resize factor of each level.
    """

    def __init__(self, in_channels: list[int], out_channels: int, scales: tuple[float, ...] = NECK_SCALES) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.lateral_convs = nn.ModuleList(plain_conv(c, out_channels, 1) for c in in_channels)
        self.convs = nn.ModuleList(plain_conv(out_channels, out_channels, 3) for _ in self.scales)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, feats, strict=True)]
        if len(laterals) == 1:
            laterals = laterals * len(self.scales)
        return [conv(upsample(x, s)) for conv, x, s in zip(self.convs, laterals, self.scales, strict=True)]


class UPerHead(nn.Module):
    """UPerNet head: PPM on the last level + FPN over all levels, fused by a 3x3 conv, then the classifier.

    Args:
        in_channels: channels of the 4 pyramid levels.
        channels: channels of every conv of the head (512 in mmseg's ViT configs).
        num_classes: output classes.
        pool_scales: adaptive pooling sizes of the PPM.
        dropout: dropout before the classifier.
    """

    def __init__(self, in_channels: list[int], channels: int, num_classes: int,
                 pool_scales: tuple[int, ...] = (1, 2, 3, 6), dropout: float = 0.1) -> None:
        super().__init__()
        top = in_channels[-1]
        self.psp_modules = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), conv_bn_relu(top, channels, 1)) for s in pool_scales)
        self.bottleneck = conv_bn_relu(top + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(conv_bn_relu(c, channels, 1) for c in in_channels[:-1])
        self.fpn_convs = nn.ModuleList(conv_bn_relu(channels, channels, 3) for _ in in_channels[:-1])
        self.fpn_bottleneck = conv_bn_relu(len(in_channels) * channels, channels, 3)
        self.cls = Classifier(channels, num_classes, dropout)

    def features(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """The 4 levels -> the fused feature ``[B, channels, h0, w0]`` at the finest level."""
        top = feats[-1]
        pooled = [resize_to(m(top), top.shape[-2:]) for m in self.psp_modules]
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, feats, strict=False)]
        laterals.append(self.bottleneck(torch.cat([top, *pooled], dim=1)))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize_to(laterals[i], laterals[i - 1].shape[-2:])
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals, strict=False)] + [laterals[-1]]
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [resize_to(x, size) for x in outs[1:]]
        return self.fpn_bottleneck(torch.cat(outs, dim=1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.cls(self.features(feats))
