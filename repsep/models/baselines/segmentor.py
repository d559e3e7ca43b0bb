"""The recognisable baselines as one segmentor: :class:`MMSegViT` -> optional neck -> decode head (+ training-only
auxiliary heads), with the same interface as :class:`repsep.models.Segmentor` (eval: logits at the input size;
train: a dict for :meth:`losses`; ``deploy``, ``layer_id``, ``no_weight_decay``, ``forward_features``).

Data flow (as mmseg's ``EncoderDecoder.encode_decode``)::

    image -> x * input_scale + input_shift      (identity, or the source's normalisation for imported models)
          -> backbone taps [16] -> neck -> decode_head -> logits (bilinear, align_corners=False, to the input size)

``input_scale`` / ``input_shift`` are persistent buffers: a model trained on other mean/std (Segmenter's
127.5/127.5) maps this project's ImageNet-normalised batch to its own normalisation, so every command feeds it the
same input.
"""

from __future__ import annotations

import torch
from torch import nn

from repsep.models.baselines.parts import AuxHeads, FCNHead, resize_to
from repsep.models.baselines.segmenter import MaskTransformerHead
from repsep.models.baselines.setr import MLANeck, SETRMLAHead, SETRUPHead
from repsep.models.baselines.upernet import MultiLevelNeck, UPerHead
from repsep.models.baselines.vit import MMSegViT
from repsep.models.config import ModelConfig
from repsep.models.layer_decay import LayerDecayMixin
from repsep.models.losses import pixel_cross_entropy

BASELINES = ("upernet_vit", "setr_naive", "setr_pup", "setr_mla", "segmenter_linear", "segmenter_mask")


def build_backbone(cfg: ModelConfig) -> MMSegViT:
    return MMSegViT(cfg.backbone, cfg.taps, img_size=cfg.img_size, patch_size=cfg.patch_size, depth=cfg.depth,
                    embed_dim=cfg.embed_dim, num_heads=cfg.num_heads, drop_path_rate=cfg.drop_path,
                    final_norm=cfg.final_norm, with_cls_token=cfg.with_cls_token, pos_interp=cfg.pos_interp)


def _parts(cfg: ModelConfig, dim: int, n_taps: int) -> tuple[nn.Module | None, nn.Module, AuxHeads | None]:
    """(neck, decode_head, aux_head) of the architecture ``cfg.name``."""
    k, w = cfg.num_classes, cfg.width
    aux_w = cfg.aux_width or w
    if cfg.name == "upernet_vit":
        nw = cfg.neck_width or dim
        neck = MultiLevelNeck([dim] * n_taps, nw)
        head = UPerHead([nw] * 4, w, k, dropout=cfg.dropout)
        return neck, head, AuxHeads([FCNHead(nw, aux_w, k, num_convs=1, dropout=cfg.dropout, in_index=3)])
    if cfg.name in ("setr_naive", "setr_pup"):
        pup = cfg.name == "setr_pup"
        head = SETRUPHead(dim, w, k, num_convs=4 if pup else 1, up_scale=2 if pup else 4,
                          kernel_size=3 if pup else 1, dropout=cfg.dropout)
        aux = [SETRUPHead(dim, aux_w, k, num_convs=1, up_scale=4, kernel_size=3 if pup else 1, dropout=cfg.dropout,
                          in_index=i) for i in range(n_taps - 1)]
        return None, head, AuxHeads(aux)
    if cfg.name == "setr_mla":
        nw = cfg.neck_width or 256
        neck = MLANeck([dim] * n_taps, nw)
        head = SETRMLAHead([nw] * n_taps, cfg.mla_width, k, dropout=cfg.dropout)
        aux = [FCNHead(nw, nw, k, num_convs=0, kernel_size=1, dropout=cfg.dropout, in_index=i) for i in range(n_taps)]
        return neck, head, AuxHeads(aux)
    if cfg.name == "segmenter_linear":
        return None, FCNHead(dim, dim, k, num_convs=0, dropout=cfg.dropout), None
    if cfg.name == "segmenter_mask":
        heads = cfg.decoder_heads or max(1, w // 64)
        return None, MaskTransformerHead(dim, w, k, cfg.decoder_layers, heads), None
    raise ValueError(f"not a baseline: {cfg.name!r}")


class BaselineSegmentor(LayerDecayMixin):
    """ViT + neck + decode head of one of :data:`BASELINES` (see the module docstring).

    ``forward`` in ``eval()`` mode returns logits ``[B, K, H, W]``; in ``train()`` mode a dict with ``logits`` and
    ``aux_logits`` (a list, one per auxiliary head, each ``[B, K, H, W]``) when auxiliary heads exist.
    """

    NO_DECAY_EXTRA = frozenset({"decode_head.cls_emb"})  # Segmenter's class embeddings (mmseg: no decay)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.backbone = build_backbone(cfg)
        self.neck, self.decode_head, self.aux_head = _parts(cfg, self.backbone.embed_dim, len(self.backbone.taps))
        self.register_buffer("input_scale", torch.ones(3))
        self.register_buffer("input_shift", torch.zeros(3))
        self.size_divisor = self.backbone.patch_size

    def set_input_normalisation(self, mean: tuple[float, ...], std: tuple[float, ...],
                                project_mean: tuple[float, ...], project_std: tuple[float, ...]) -> None:
        """Make the model take ``(img - project_mean) / project_std`` inputs while computing on
        ``(img - mean) / std`` (all in 0-255 RGB units)."""
        m, s = torch.tensor(mean), torch.tensor(std)
        pm, ps = torch.tensor(project_mean), torch.tensor(project_std)
        self.input_scale.copy_(ps / s)
        self.input_shift.copy_((pm - m) / s)

    def _features(self, images: torch.Tensor, all_blocks: bool = False) -> tuple[list, list]:
        x = images * self.input_scale.view(1, 3, 1, 1) + self.input_shift.view(1, 3, 1, 1)
        taps = self.backbone(x, all_blocks=all_blocks)
        feats = taps if all_blocks else (self.neck(taps) if self.neck is not None else taps)
        return taps, feats

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        _, feats = self._features(images)
        size = images.shape[-2:]
        logits = resize_to(self.decode_head(feats), size)
        if not self.training:
            return logits
        out: dict = {"logits": logits}
        if self.aux_head is not None:
            out["aux_logits"] = [resize_to(a, size) for a in self.aux_head(feats)]
        return out

    @torch.no_grad()
    def forward_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named features ``[B, C, h, w]`` for analysis: ``vit.block{i}`` (every kept block, before any final
        norm, class token removed) and ``decoder_input`` (the feature the final classifier receives)."""
        taps, _ = self._features(images, all_blocks=True)
        out = {f"vit.block{i}": t for i, t in enumerate(taps, start=1)}
        _, feats = self._features(images)
        head = self.decode_head
        out["decoder_input"] = head.features(feats) if hasattr(head, "features") else feats[-1]
        return out

    def losses(self, outputs: dict, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """``loss_ce`` (main CE) + ``loss_aux`` (aux_weight x the sum of the auxiliary CEs, mmseg's 0.4 each)."""
        cfg = self.config
        out = {"loss_ce": pixel_cross_entropy(outputs["logits"], target, cfg.ignore_index, cfg.ohem,
                                              cfg.ohem_thresh, cfg.ohem_min_kept)}
        if outputs.get("aux_logits"):
            out["loss_aux"] = cfg.aux_weight * sum(pixel_cross_entropy(a, target, cfg.ignore_index)
                                                   for a in outputs["aux_logits"])
        out["loss"] = sum(out.values())
        return out

    def deploy(self) -> BaselineSegmentor:
        """Remove the training-only auxiliary heads in place; eval outputs do not change."""
        self.aux_head = None
        return self
