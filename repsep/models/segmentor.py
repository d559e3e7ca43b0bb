"""The segmenter: timm backbone + baseline or RSSeg decoder (Hong et al., arXiv 2212.13764, reconstructed).

Data flow (stride in brackets; modules named as in ``state_dict``)::

    image -> backbone (ViT taps [16] or pyramid stages [4..32])
          -> fusion: x <- Stage_k(x + proj(tap_k) [+ d(x)])                     [8]   L = last stage
             (pathway on: x starts from ``stem`` and d = local-patch discrepancy; off: x starts at 0, no d)
          -> ``sasm`` (on): per-pixel gate of L and G = proj(last tap)           [8]
          -> ``fuse`` Conv3x3-BN-ReLU                                             [8]   F
          -> ``aux_head`` on F: coarse logits P (aux CE; DCA's region source)     [8]
          -> ``dca`` (on): y = attend(F, regions(F, P)); ``region_classifier``    [8]
          -> ``head``: upsample x2, + stride-4 feature (stem / stage 1), classify [4] -> bilinear to input size

Inputs are padded on the right/bottom to a multiple of ``size_divisor``; logits are cropped back. DCA's soft
regions pool only the stride-8 cells that hold image (``ceil(H / 8) x ceil(W / 8)``), not that padding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from repsep.models.backbones import PyramidBackbone, ViTBackbone, pad_to_multiple
from repsep.models.config import ModelConfig
from repsep.models.heads import ConvBNReLU, FCNHead, SegHead, TapFusion, resize
from repsep.models.layer_decay import LayerDecayMixin
from repsep.models.losses import pixel_cross_entropy
from repsep.models.rsseg.dca import DCA, gather_regions, region_loss
from repsep.models.rsseg.pathway import ConvStem, LocalDiscrepancy, PyramidStem
from repsep.models.rsseg.sasm import SASM, downsample_labels, separation_loss

__all__ = ["ModelConfig", "Segmentor", "build_model"]

DECODER_STRIDE = 8


def _build_backbone(cfg: ModelConfig) -> ViTBackbone | PyramidBackbone:
    if cfg.is_pyramid:
        return PyramidBackbone(cfg.backbone, cfg.stage_depths, drop_path_rate=cfg.drop_path)
    return ViTBackbone(cfg.backbone, cfg.taps, img_size=cfg.img_size, patch_size=cfg.patch_size, depth=cfg.depth,
                       embed_dim=cfg.embed_dim, num_heads=cfg.num_heads, drop_path_rate=cfg.drop_path)


class Segmentor(LayerDecayMixin):
    """Backbone + decoder built from a :class:`ModelConfig` (see the module docstring for the data flow).

    ``forward`` in ``train()`` mode returns a dict (``logits``, ``aux_logits``, ``fused``, ``regions`` as the parts
    exist); in ``eval()`` mode the logits tensor ``[B, K, H, W]``. :meth:`losses` turns the dict into losses.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.backbone = _build_backbone(cfg)
        dims = self.backbone.out_dims
        w = cfg.width
        self.stem: nn.Module | None = None
        low_level_dim = dims[0] if cfg.is_pyramid else None
        if cfg.has_stem:
            if cfg.is_pyramid:
                self.stem = PyramidStem(dims[0], w)
            else:
                self.stem = ConvStem(cfg.stem_width, w)
                low_level_dim = cfg.stem_width
        if not cfg.has_low_level_skip:
            low_level_dim = None
        discrepancy = LocalDiscrepancy(w, cfg.discrepancy) if cfg.has_discrepancy else None
        self.fusion = TapFusion(dims, w, cfg.blocks_per_stage, discrepancy)
        self.sasm = SASM(w, dims[-1], cfg.sasm_gate) if cfg.sasm else None
        self.fuse = ConvBNReLU(w, w)
        self.aux_head = FCNHead(w, cfg.num_classes, cfg.dropout) if cfg.has_aux_head else None
        self.dca = DCA(w, cfg.dca_key_channels) if cfg.dca else None
        self.region_classifier = nn.Linear(w, cfg.num_classes + 1) if cfg.dca else None
        self.head = SegHead(w, cfg.num_classes, low_level_dim, cfg.low_level_width, cfg.dropout)
        self.size_divisor = math.lcm(self.backbone.size_divisor, DECODER_STRIDE)

    # ---- forward ----------------------------------------------------------------------------------------------

    def _run(self, images: torch.Tensor, all_blocks: bool = False) -> dict[str, object]:
        """Everything the forward passes need, on the padded grid."""
        x = pad_to_multiple(images, self.size_divisor)
        size8 = (x.shape[-2] // DECODER_STRIDE, x.shape[-1] // DECODER_STRIDE)
        feats = self.backbone(x, all_blocks=all_blocks)
        taps = [feats[t - 1] for t in self.backbone.taps] if all_blocks and not self.backbone.is_pyramid else feats
        low, init = None, None
        if self.stem is not None:
            low, init = self.stem(x, taps)
        elif self.backbone.is_pyramid:
            low = taps[0]
        stages = self.fusion(taps, size8, init)
        mix = self.sasm(stages[-1], taps[-1]) if self.sasm is not None else stages[-1]
        fused = self.fuse(mix)
        aux_logits = None
        if self.aux_head is not None and (self.training or self.dca is not None):
            aux_logits = self.aux_head(fused)
        out = fused
        regions = None
        if self.dca is not None:
            valid = (-(-images.shape[-2] // DECODER_STRIDE), -(-images.shape[-1] // DECODER_STRIDE))
            regions = gather_regions(fused, aux_logits, valid)
            out = self.dca(fused, regions)
        logits = self.head(out, low if self.config.has_low_level_skip else None)
        return dict(padded=x, feats=feats, stages=stages, fused=fused, aux_logits=aux_logits, regions=regions,
                    decoder_input=out, logits=logits)

    def _to_input(self, logits: torch.Tensor, padded: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Logits on the padded grid -> bilinear to the padded image size -> crop to the input ``size``."""
        return resize(logits, padded.shape[-2:])[..., : size[0], : size[1]]

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """``[B, 3, H, W]`` -> eval: logits ``[B, K, H, W]``; train: dict with ``logits`` ``[B, K, H, W]``,
        ``aux_logits`` ``[B, K, H, W]`` (aux head), ``fused`` F ``[B, C, H', W']`` (stride 8 of the padded input)
        and ``regions`` ``[B, K, C]`` (DCA), as the parts exist."""
        r = self._run(images)
        size = images.shape[-2:]
        logits = self._to_input(r["logits"], r["padded"], size)
        if not self.training:
            return logits
        out = {"logits": logits, "fused": r["fused"]}
        if r["aux_logits"] is not None:
            out["aux_logits"] = self._to_input(r["aux_logits"], r["padded"], size)
        if r["regions"] is not None:
            out["regions"] = r["regions"]
        return out

    @torch.no_grad()
    def forward_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named features ``[B, C, h, w]`` for analysis, cropped to the input's extent (``ceil(H / stride)``).

        Keys: ``vit.block{i}`` (1-based, every kept block; patch tokens before the final norm) for plain ViTs or
        ``backbone.stage{s}`` for pyramid ViTs; ``pathway.stage{k}`` (pathway on); ``sasm`` (SASM output F, SASM
        on); ``dca`` (DCA output, DCA on); ``decoder_input`` (the stride-8 feature the final head receives, in
        every variant: DCA output, else F). Runs in the module's current mode; call ``eval()`` first.
        """
        r = self._run(images, all_blocks=True)
        h, w = images.shape[-2:]
        ph = r["padded"].shape[-2]

        def crop(t: torch.Tensor) -> torch.Tensor:
            stride = ph // t.shape[-2]
            return t[..., : -(-h // stride), : -(-w // stride)]

        prefix = "backbone.stage" if self.backbone.is_pyramid else "vit.block"
        out = {f"{prefix}{i}": crop(t) for i, t in enumerate(r["feats"], start=1)}
        if self.config.pathway:
            out.update({f"pathway.stage{k}": crop(t) for k, t in enumerate(r["stages"], start=1)})
        if self.sasm is not None:
            out["sasm"] = crop(r["fused"])
        if self.dca is not None:
            out["dca"] = crop(r["decoder_input"])
        out["decoder_input"] = crop(r["decoder_input"])
        return out

    # ---- losses -----------------------------------------------------------------------------------------------

    def losses(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted loss terms and their sum ``loss``.

        ``loss_ce`` (main CE, OHEM if set) + ``loss_aux`` (aux_weight x aux CE) + ``loss_sep`` (sep_weight x
        margin loss, when > 0 and SASM on) + ``loss_region`` (dca_weight x region classification, DCA on).

        Args:
            outputs: the train-mode forward dict.
            target: ``[B, H, W]`` int64, ``ignore_index`` for unlabelled pixels.
        """
        cfg = self.config
        out = {"loss_ce": pixel_cross_entropy(outputs["logits"], target, cfg.ignore_index, cfg.ohem,
                                              cfg.ohem_thresh, cfg.ohem_min_kept)}
        if "aux_logits" in outputs:
            out["loss_aux"] = cfg.aux_weight * pixel_cross_entropy(outputs["aux_logits"], target, cfg.ignore_index)
        fused = outputs["fused"]
        labels = downsample_labels(target, fused.shape[-2:], DECODER_STRIDE, cfg.ignore_index)
        if self.sasm is not None and cfg.sep_weight > 0:
            out["loss_sep"] = cfg.sep_weight * separation_loss(fused, labels, cfg.num_classes, cfg.sep_margin,
                                                               cfg.ignore_index)
        if "regions" in outputs and self.region_classifier is not None:
            out["loss_region"] = cfg.dca_weight * region_loss(
                self.region_classifier, outputs["regions"], fused, target, labels, cfg.num_classes,
                cfg.ignore_index, cfg.dca_label_smoothing)
        out["loss"] = sum(out.values())
        return out

    # ---- deployment and optimiser helpers ---------------------------------------------------------------------

    def deploy(self) -> Segmentor:
        """Remove the training-only modules (``config.aux_modules``) in place; eval outputs do not change."""
        for name in self.config.aux_modules:
            setattr(self, name, None)
        return self


def build_model(cfg: ModelConfig) -> Segmentor | nn.Module:
    """The segmenter described by ``cfg`` (randomly initialised; load backbone weights with
    :func:`repsep.models.load_pretrained`); the recognisable baselines (``upernet_vit``, ``setr_*``,
    ``segmenter_*``) are a :class:`repsep.models.baselines.BaselineSegmentor`."""
    from repsep.models.baselines import BASELINES, BaselineSegmentor

    if cfg.name in BASELINES:
        return BaselineSegmentor(cfg)
    return Segmentor(cfg)
