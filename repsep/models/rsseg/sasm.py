"""Spatially adaptive separation module (SASM) and its optional margin loss. RECONSTRUCTION.

Inputs: the local feature L (pathway output, stride 8) and the global feature G (last ViT tap / last pyramid
stage, Conv1x1+BN to the same width, resized to stride 8). Per pixel, a gate decides how much of each to keep:

* ``softmax``: ``A = softmax_2(Conv1x1(ReLU(BN(Conv3x3([L; G])))))``, ``mix = A_L * L + A_G * G``;
* ``sigmoid``: one channel ``g = sigmoid(...)``, ``mix = g * L + (1 - g) * G``.

The segmentor's Conv3x3-BN-ReLU ``fuse`` turns ``mix`` into the separated feature F, which an auxiliary FCN head
supervises with cross-entropy (weight 0.4), and optionally :func:`separation_loss` (weight 0 by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repsep.models.heads import ConvBN, ConvBNReLU, resize


class SASM(nn.Module):
    """Per-pixel gated mix of local and global features.

    Args:
        width: channels of L (and of the output).
        global_dim: channels of the global backbone feature (projected to ``width``).
        gate: ``softmax`` (two weights per pixel) or ``sigmoid`` (one).
    """

    def __init__(self, width: int, global_dim: int, gate: str = "softmax") -> None:
        super().__init__()
        self.global_proj = ConvBN(global_dim, width)
        self.gate = gate
        self.attn = nn.Sequential(ConvBNReLU(2 * width, width), nn.Conv2d(width, 2 if gate == "softmax" else 1, 1))

    def forward(self, local: torch.Tensor, global_feat: torch.Tensor) -> torch.Tensor:
        """L ``[B, C, h, w]``, global ``[B, D, h', w']`` -> mix ``[B, C, h, w]``."""
        g = resize(self.global_proj(global_feat), local.shape[-2:])
        logits = self.attn(torch.cat([local, g], dim=1))
        if self.gate == "softmax":
            a = logits.softmax(dim=1)
            return a[:, :1] * local + a[:, 1:] * g
        a = logits.sigmoid()
        return a * local + (1 - a) * g


def downsample_labels(target: torch.Tensor, size: tuple[int, int], stride: int, ignore_index: int) -> torch.Tensor:
    """Labels ``[B, H, W]`` -> ``[B, *size]`` on a stride-``stride`` grid of the padded image (centre pixels);
    the target is padded with ``ignore_index`` to ``size * stride`` first."""
    h, w = size
    pad = (0, w * stride - target.shape[-1], 0, h * stride - target.shape[-2])
    padded = F.pad(target, pad, value=ignore_index)
    c = stride // 2
    return padded[:, c::stride, c::stride]


def separation_loss(feature: torch.Tensor, labels: torch.Tensor, num_classes: int, margin: float = 0.5,
                    ignore_index: int = 255) -> torch.Tensor:
    """Pixel-to-centroid margin loss on L2-normalised features (batch-wise class centroids).

    ``pull`` = mean over labelled pixels of ``1 - cos(f_i, mu_{y_i})``; ``push`` = mean over pairs of present
    classes of ``relu(cos(mu_a, mu_b) - margin)``; returns ``pull + push`` (0 when no pixel is labelled).

    Args:
        feature: ``[B, C, h, w]``.
        labels: ``[B, h, w]`` int64 on the feature grid.
    """
    f = F.normalize(feature.permute(0, 2, 3, 1).reshape(-1, feature.shape[1]), dim=1)
    y = labels.reshape(-1)
    valid = (y != ignore_index) & (y >= 0) & (y < num_classes)
    if not valid.any():
        return feature.sum() * 0.0
    f, y = f[valid], y[valid]
    sums = torch.zeros(num_classes, f.shape[1], dtype=f.dtype, device=f.device).index_add_(0, y, f)
    present = torch.bincount(y, minlength=num_classes) > 0
    centroids = F.normalize(sums, dim=1)
    pull = (1 - (f * centroids[y]).sum(dim=1)).mean()
    mu = centroids[present]
    if mu.shape[0] < 2:
        return pull
    cos = mu @ mu.t()
    off_diag = ~torch.eye(mu.shape[0], dtype=torch.bool, device=mu.device)
    push = F.relu(cos[off_diag] - margin).mean()
    return pull + push
