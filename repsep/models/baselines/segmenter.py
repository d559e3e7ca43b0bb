"""Segmenter heads (Strudel et al., "Segmenter: Transformer for Semantic Segmentation", arXiv 2105.05633), as
mmseg 1.x builds them (``configs/segmenter``; the ViT runs with ``final_norm`` and taps only its last block).

* linear: a 1x1 classifier on the final-normed patch tokens (mmseg ``FCNHead`` with ``num_convs=0``);
* mask transformer: patch tokens projected to the decoder width, K learnable class embeddings appended, 2
  transformer blocks + LayerNorm, patch and class embeddings projected and L2-normalised, masks = patches @
  classes^T, LayerNorm over the K masks -> ``[B, K, h, w]``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn


class MaskTransformerHead(nn.Module):
    """Segmenter's mask transformer decoder (LayerNorms eps 1e-5, as mmseg's default ``LN``).

    Args:
        in_channels: channels of the tap.
        width: decoder width (embed dims).
        num_classes: K, one learnable class embedding each.
        num_layers: decoder blocks.
        num_heads: attention heads of the blocks.
        in_index: which tap the head reads.
    """

    def __init__(self, in_channels: int, width: int, num_classes: int, num_layers: int = 2, num_heads: int = 12,
                 in_index: int = -1) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-5)
        self.dec_proj = nn.Linear(in_channels, width)
        self.cls_emb = nn.Parameter(torch.randn(1, num_classes, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, num_heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=norm)
                                    for _ in range(num_layers))
        self.decoder_norm = norm(width)
        self.patch_proj = nn.Linear(width, width, bias=False)
        self.classes_proj = nn.Linear(width, width, bias=False)
        self.mask_norm = norm(num_classes)
        self.num_classes = num_classes
        self.in_index = in_index

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Taps -> mask logits ``[B, K, h, w]`` on the tap's grid."""
        x = feats[self.in_index]
        b, _, h, w = x.shape
        x = self.dec_proj(x.flatten(2).transpose(1, 2))
        x = torch.cat([x, self.cls_emb.expand(b, -1, -1)], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.decoder_norm(x)
        k = self.num_classes
        patches = F.normalize(self.patch_proj(x[:, :-k]), dim=2)
        classes = F.normalize(self.classes_proj(x[:, -k:]), dim=2)
        masks = self.mask_norm(patches @ classes.transpose(1, 2))
        return masks.transpose(1, 2).reshape(b, k, h, w)
