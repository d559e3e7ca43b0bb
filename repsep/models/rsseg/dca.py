"""Discriminative cross-attention (DCA) and its auxiliary region supervision. RECONSTRUCTION.

Closest public analogue: OCR (Yuan et al. 2020; mmseg ``SpatialGatherModule`` + ``ObjectAttentionBlock``):

* soft regions from the coarse prediction P ``[B, K, h, w]``: ``r_k = sum_i softmax_i(P_k)_i F_i`` (softmax over
  pixels), one region vector per class;
* pixels attend to regions: ``w_ik = softmax_k(phi(F_i) . psi(r_k) / sqrt(d))``, context
  ``c_i = rho(sum_k w_ik delta(r_k))``, output ``y_i = Conv1x1-BN-ReLU([c_i; F_i])``.

"Novel auxiliary supervisions" are reconstructed after Region Rebalance (arXiv 2204.01969): a shared linear
classifier g over K+1 outputs (K classes + "absent") classifies (a) each soft region r_k as k when class k is
present in the image, else "absent"; (b) each ground-truth class mean of F as its class (:func:`region_loss`).
The classifier g is training-only; at inference P still drives the region gathering.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repsep.models.heads import ConvBNReLU


def gather_regions(feature: torch.Tensor, coarse: torch.Tensor,
                   valid_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Soft class regions: ``[B, C, h, w]``, coarse logits ``[B, K, h, w]`` -> ``[B, K, C]``.

    ``valid_size`` (h', w'): only the top-left h' x w' cells are image (the rest pads the input to the size
    divisor); the softmax over pixels and the pooling then use those cells only, so the regions do not depend on
    the padding's content or extent. None = every cell.
    """
    if valid_size is not None:
        feature = feature[..., : valid_size[0], : valid_size[1]]
        coarse = coarse[..., : valid_size[0], : valid_size[1]]
    probs = coarse.flatten(2).softmax(dim=2)  # [B, K, N], over pixels
    return probs @ feature.flatten(2).transpose(1, 2)


class DCA(nn.Module):
    """Pixel -> region cross-attention (OCR object attention).

    Args:
        width: channels of the pixel feature F and of the output.
        key_channels: channels of queries, keys and values.
    """

    def __init__(self, width: int, key_channels: int) -> None:
        super().__init__()
        self.query = nn.Sequential(ConvBNReLU(width, key_channels, 1), ConvBNReLU(key_channels, key_channels, 1))
        self.key = nn.Sequential(ConvBNReLU(width, key_channels, 1), ConvBNReLU(key_channels, key_channels, 1))
        self.value = ConvBNReLU(width, key_channels, 1)
        self.out = ConvBNReLU(key_channels, width, 1)
        self.bottleneck = ConvBNReLU(2 * width, width, 1)
        self.scale = key_channels ** -0.5

    def forward(self, feature: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """F ``[B, C, h, w]``, regions ``[B, K, C]`` -> ``[B, C, h, w]``."""
        b, _, h, w = feature.shape
        r = regions.transpose(1, 2).unsqueeze(-1)  # [B, C, K, 1]
        q = self.query(feature).flatten(2).transpose(1, 2)  # [B, N, d]
        k = self.key(r).flatten(2)  # [B, d, K]
        v = self.value(r).flatten(2).transpose(1, 2)  # [B, K, d]
        attn = (q @ k * self.scale).softmax(dim=-1)  # [B, N, K]
        context = (attn @ v).transpose(1, 2).reshape(b, -1, h, w)
        return self.bottleneck(torch.cat([self.out(context), feature], dim=1))


def region_loss(classifier: nn.Module, regions: torch.Tensor, feature: torch.Tensor, target: torch.Tensor,
                labels: torch.Tensor, num_classes: int, ignore_index: int = 255,
                label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean of (a) soft-region and (b) ground-truth-region classification cross-entropies.

    Args:
        classifier: g, mapping ``[..., C]`` to ``[..., K + 1]`` (index K = "absent").
        regions: soft regions ``[B, K, C]``.
        feature: F ``[B, C, h, w]``.
        target: full-resolution labels ``[B, H, W]`` (class presence per image).
        labels: labels on F's grid ``[B, h, w]`` (ground-truth class means).
    """
    b, k, _ = regions.shape
    valid = (target != ignore_index) & (target >= 0) & (target < num_classes)
    flat = torch.where(valid, target, num_classes).reshape(b, -1)
    counts = torch.zeros(b, num_classes + 1, dtype=torch.long, device=target.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    classes = torch.arange(k, device=target.device).expand(b, k)
    region_targets = torch.where(counts[:, :k] > 0, classes, num_classes)
    loss_a = F.cross_entropy(classifier(regions).reshape(b * k, -1), region_targets.reshape(-1),
                             label_smoothing=label_smoothing)

    onehot_labels = torch.where((labels >= 0) & (labels < num_classes), labels, num_classes)
    onehot = F.one_hot(onehot_labels, num_classes + 1)[..., :num_classes].flatten(1, 2).to(feature.dtype)  # [B,N,K]
    pixel_counts = onehot.sum(dim=1)  # [B, K]
    means = onehot.transpose(1, 2) @ feature.flatten(2).transpose(1, 2) / pixel_counts.clamp(min=1).unsqueeze(-1)
    present = pixel_counts > 0
    if not present.any():
        return loss_a / 2
    loss_b = F.cross_entropy(classifier(means[present]), classes[present], label_smoothing=label_smoothing)
    return (loss_a + loss_b) / 2
