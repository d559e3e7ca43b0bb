"""SETR heads (Zheng et al., "Rethinking Semantic Segmentation from a Sequence-to-Sequence Perspective with
Transformers", arXiv 2012.15840), laid out as mmseg 1.x builds them (``configs/setr``).

* naive: LayerNorm on the last tap's tokens -> Conv1x1-BN-ReLU -> bilinear x4 -> classifier;
* PUP (progressive upsampling): LayerNorm -> 4 x (Conv3x3-BN-ReLU -> bilinear x2) -> classifier;
  naive and PUP train with three auxiliary copies (one unit, x4) on taps 1-3 (weight 0.4 each);
* MLA (multi-level aggregation): :class:`MLANeck` (per-tap LayerNorm, 1x1 projections, top-down sums, 3x3 convs)
  -> :class:`SETRMLAHead` (per level 2 x Conv3x3-BN-ReLU + bilinear x4, concatenated) -> classifier; four FCN
  auxiliary classifiers on the neck levels (weight 0.4 each).
"""

from __future__ import annotations

import torch
from torch import nn

from repsep.models.baselines.parts import Classifier, TokenNorm, conv_bn_relu, upsample


class SETRUPHead(nn.Module):
    """Naive / PUP head of SETR: token LayerNorm, ``num_convs`` x (Conv-BN-ReLU, bilinear x ``up_scale``), classify.

    Args:
        in_channels: channels of the tap.
        channels: channels of the convs.
        num_classes: output classes.
        num_convs: conv + upsample units (naive 1, PUP 4).
        up_scale: upsampling factor of each unit (naive 4, PUP 2).
        kernel_size: conv kernel (naive 1, PUP 3).
        dropout: dropout before the classifier.
        in_index: which tap the head reads.
    """

    def __init__(self, in_channels: int, channels: int, num_classes: int, num_convs: int = 1, up_scale: int = 4,
                 kernel_size: int = 1, dropout: float = 0.0, in_index: int = -1) -> None:
        super().__init__()
        self.norm = TokenNorm(in_channels)
        self.up_convs = nn.ModuleList(
            conv_bn_relu(in_channels if i == 0 else channels, channels, kernel_size) for i in range(num_convs))
        self.up_scale = up_scale
        self.cls = Classifier(channels, num_classes, dropout)
        self.in_index = in_index

    def features(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.norm(feats[self.in_index])
        for conv in self.up_convs:
            x = upsample(conv(x), self.up_scale)
        return x

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.cls(self.features(feats))


class MLANeck(nn.Module):
    """SETR's multi-level aggregation: LayerNorm per tap, 1x1 projections, top-down cumulative sums, 3x3 convs.

    Args:
        in_channels: channels of the 4 taps.
        out_channels: channels of every level (256 in mmseg).
    """

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.norm = nn.ModuleList(TokenNorm(c) for c in in_channels)
        self.channel_proj = nn.ModuleList(conv_bn_relu(c, out_channels, 1) for c in in_channels)
        self.feat_extract = nn.ModuleList(conv_bn_relu(out_channels, out_channels, 3) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        projected = [proj(norm(x)) for norm, proj, x in zip(self.norm, self.channel_proj, feats, strict=True)]
        sums, total = [], None
        for x in reversed(projected):  # coarsest semantic level (last tap) first
            total = x if total is None else total + x
            sums.append(total)
        return [conv(x) for conv, x in zip(self.feat_extract, sums, strict=True)]


class SETRMLAHead(nn.Module):
    """SETR-MLA head: per level 2 x Conv3x3-BN-ReLU at ``mla_channels`` + bilinear x ``up_scale``, concatenated
    (``4 * mla_channels``), classified.
    """

    def __init__(self, in_channels: list[int], mla_channels: int, num_classes: int, up_scale: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.up_convs = nn.ModuleList(
            nn.Sequential(conv_bn_relu(c, mla_channels, 3), conv_bn_relu(mla_channels, mla_channels, 3))
            for c in in_channels)
        self.up_scale = up_scale
        self.cls = Classifier(len(in_channels) * mla_channels, num_classes, dropout)

    def features(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([upsample(conv(x), self.up_scale) for conv, x in zip(self.up_convs, feats, strict=True)],
                         dim=1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.cls(self.features(feats))
