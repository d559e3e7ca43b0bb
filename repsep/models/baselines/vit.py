"""The project's timm ViT run the way mmsegmentation's ``VisionTransformer`` runs (the baselines' backbone).

mmseg's ViT and timm's differ where the segmenters take their features; :class:`MMSegViT` keeps timm's modules
(``backbone.model.*``, so timm / DeiT / MAE weights load unchanged) and reproduces mmseg's forward:

* patch embedding on the input padded on the right/bottom to a multiple of the patch (mmseg ``padding='corner'``);
* position embedding ``[1, 1 + gh*gw, D]`` resized to the token grid only when the token *count* differs, on the
  grid with the class-token entry kept, ``bicubic`` or ``bilinear`` with ``align_corners=False`` (mmseg
  ``resize_pos_embed``, ``interpolate_mode``);
* ``with_cls_token=False`` (SETR-MLA): the class token is added with its position and then dropped before the
  blocks;
* taps are the raw outputs of the chosen blocks with the class token removed; ``final_norm`` applies a LayerNorm
  (``final_ln``) to the last block's output only, as mmseg's ``final_norm`` (``ln1``) does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repsep.models.backbones import ViTBackbone, pad_to_multiple


def resize_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int], old_grid: tuple[int, int],
                     mode: str) -> torch.Tensor:
    """``[1, 1 + gh*gw, D]`` -> ``[1, 1 + h*w, D]``: the grid part resized (``mode``, align_corners=False), the
    class-token entry kept."""
    gh, gw = old_grid
    cls_pos, grid_pos = pos_embed[:, :1], pos_embed[:, -gh * gw:]
    grid_pos = grid_pos.reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
    grid_pos = F.interpolate(grid_pos, size=grid, mode=mode, align_corners=False)
    return torch.cat([cls_pos, grid_pos.flatten(2).transpose(1, 2)], dim=1)


class MMSegViT(ViTBackbone):
    """A timm plain ViT with mmseg ``VisionTransformer`` forward semantics (see the module docstring).

    Args:
        name, taps, img_size, patch_size, depth, embed_dim, num_heads, drop_path_rate: as :class:`ViTBackbone`.
        final_norm: LayerNorm (eps 1e-6) on the last block's output; applies when the last tap is the last block.
        with_cls_token: keep the class token through the blocks.
        pos_interp: ``bicubic`` or ``bilinear`` position-embedding resize.
    """

    def __init__(self, name: str, taps: tuple[int, ...], *, final_norm: bool = False, with_cls_token: bool = True,
                 pos_interp: str = "bicubic", **kwargs) -> None:
        super().__init__(name, taps, **kwargs)
        self.with_cls_token = with_cls_token
        self.pos_interp = pos_interp
        self.final_ln = nn.LayerNorm(self.embed_dim, eps=1e-6) if final_norm else None

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid of the stored position embedding (img_size / patch)."""
        return tuple(self.model.patch_embed.grid_size)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``[B, 3, H, W]`` -> tokens after the position embedding ``[B, (1+) h*w, D]`` and the grid (h, w)."""
        m = self.model
        x = m.patch_embed.proj(pad_to_multiple(x, self.patch_size))
        b, _, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([m.cls_token.expand(b, -1, -1), x], dim=1)
        pos = m.pos_embed
        if pos.shape[1] != x.shape[1]:
            pos = resize_pos_embed(pos, (h, w), self.grid, self.pos_interp)
        x = m.pos_drop(x + pos)
        if not self.with_cls_token:
            x = x[:, 1:]
        return m.norm_pre(x), (h, w)

    def forward(self, x: torch.Tensor, all_blocks: bool = False) -> list[torch.Tensor]:
        """``[B, 3, H, W]`` -> maps ``[B, D, ceil(H/p), ceil(W/p)]`` of the taps (every block if ``all_blocks``;
        then without the final norm)."""
        x, (h, w) = self.tokens(x)
        wanted = set(range(self.num_layers)) if all_blocks else {t - 1 for t in self.taps}
        last = self.num_layers - 1
        outs = []
        for i, block in enumerate(self.model.blocks):
            x = block(x)
            if i not in wanted:
                continue
            t = self.final_ln(x) if self.final_ln is not None and i == last and not all_blocks else x
            t = t[:, 1:] if self.with_cls_token else t
            outs.append(t.transpose(1, 2).reshape(t.shape[0], -1, h, w))
        return outs
