"""A HuggingFace transformers segmentation model behind the project's Segmentor interface (eval mode).

:class:`HFSegmentor` wraps a ``*ForSemanticSegmentation`` (SegFormer, BEiT, DPT, UperNet, Data2Vec-vision) or a
query-based model (Mask2Former, MaskFormer, OneFormer) so that every command treats it like a project model:

* ``forward(images [B, 3, H, W])``, the project's ImageNet-normalised batch, gives logits ``[B, K, H, W]``. The
  input is first re-normalised to the folder's preprocessor mean/std (``x * input_scale + input_shift``, the same
  fold as :meth:`repsep.models.baselines.segmentor.BaselineSegmentor.set_input_normalisation`), then the library's
  forward, then what its image processor's ``post_process_semantic_segmentation`` does: dense models'
  logits bilinearly upsampled (``align_corners=False``); query models' per-pixel class scores
  ``einsum(softmax(class)[..., :-1], sigmoid(masks))`` (Mask2Former first resizes the masks to 384x384, as the
  library does), upsampled to the input size (OneFormer: antialiased bilinear, torchvision's ``resize``).
* ``forward_features(images)`` gives the per-layer features from ``output_hidden_states`` as ``[B, C, h, w]``
  maps named with the model's own layer names (ViT encoders: ``<prefix>.encoder.layer.<i>`` with the CLS /
  register tokens dropped; SegFormer: ``segformer.encoder.block.<s>``; AutoBackbone models: ``backbone.<stage>``)
  and ``decoder_input`` (what the final per-pixel classifier reads; query models: the pixel decoder's mask
  features).

transformers is imported only when a model is built (it takes seconds to import).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DENSE = ("SegformerForSemanticSegmentation", "BeitForSemanticSegmentation", "DPTForSemanticSegmentation",
         "UperNetForSemanticSegmentation", "Data2VecVisionForSemanticSegmentation")
QUERY = ("Mask2FormerForUniversalSegmentation", "MaskFormerForInstanceSegmentation",
         "OneFormerForUniversalSegmentation")
SUPPORTED = DENSE + QUERY
MASK2FORMER_MASK_SIZE = (384, 384)
"""Mask2Former's ``post_process_semantic_segmentation`` resizes the mask logits to this size before the einsum."""


def build_hf_model(architecture: str, config: dict[str, Any]) -> nn.Module:
    """The transformers model ``architecture`` built from a ``config.json`` dict (random weights, no hub)."""
    import transformers

    model = getattr(transformers, architecture)(hf_config(config))
    return model.eval()


def hf_config(config: dict[str, Any]) -> Any:
    """A transformers config object from a ``config.json`` dict (its ``model_type`` picks the class)."""
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ValueError(f"model_type {model_type!r} is not known to transformers")
    return CONFIG_MAPPING[model_type].from_dict(config)


class HFSegmentor(nn.Module):
    """``hf_model`` (eval mode) taking the project's ImageNet-normalised input (see the module docstring).

    Args:
        hf_model: the transformers model.
        architecture: its class name (one of :data:`SUPPORTED`).
        mean, std: the folder's preprocessor normalisation, 0-255 RGB.
        task_inputs: OneFormer's task token ids ``[L]`` ("the task is semantic"), else None.
    """

    def __init__(self, hf_model: nn.Module, architecture: str, mean: tuple[float, ...], std: tuple[float, ...],
                 task_inputs: torch.Tensor | None = None) -> None:
        from repsep.data.transforms import IMAGENET_MEAN, IMAGENET_STD

        super().__init__()
        if architecture not in SUPPORTED:
            raise ValueError(f"unsupported architecture {architecture}")
        self.hf = hf_model.eval()
        self.architecture = architecture
        m, s = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
        pm, ps = torch.tensor(IMAGENET_MEAN, dtype=torch.float64), torch.tensor(IMAGENET_STD, dtype=torch.float64)
        self.register_buffer("input_scale", (ps / s).float(), persistent=False)
        self.register_buffer("input_shift", ((pm - m) / s).float(), persistent=False)
        self.register_buffer("task_inputs", task_inputs, persistent=False)
        self.num_classes = int(hf_model.config.num_labels)
        self.size_divisor = int(getattr(hf_model.config, "patch_size", 32) or 32) if architecture in (
            "BeitForSemanticSegmentation", "DPTForSemanticSegmentation",
            "Data2VecVisionForSemanticSegmentation") else 32
        self._kwargs = {"interpolate_pos_encoding": True} if "interpolate_pos_encoding" in inspect.signature(
            hf_model.forward).parameters else {}
        self._classifier = _final_classifier(hf_model, architecture)

    def hf_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """The project's normalised batch -> the library's ``pixel_values`` (the folder's normalisation)."""
        return images * self.input_scale.view(1, 3, 1, 1) + self.input_shift.view(1, 3, 1, 1)

    def run(self, pixel_values: torch.Tensor, hidden: bool = False) -> Any:
        """The library's forward on ``pixel_values`` (its own normalisation)."""
        kwargs = dict(self._kwargs)
        if self.task_inputs is not None:
            kwargs["task_inputs"] = self.task_inputs.view(1, -1).expand(pixel_values.shape[0], -1).to(pixel_values)
        # Mask2Former's forward fails without hidden states when use_auxiliary_loss is off (transformers 5.x)
        hidden = hidden or self.architecture == "Mask2FormerForUniversalSegmentation"
        return self.hf(pixel_values=pixel_values, output_hidden_states=hidden, **kwargs)

    def scores(self, outputs: Any, size: tuple[int, int]) -> torch.Tensor:
        """Per-pixel class scores ``[B, K, H, W]`` at ``size`` from the library's outputs, as its image
        processor's ``post_process_semantic_segmentation`` computes them."""
        if self.architecture in DENSE:
            logits = outputs.logits
            return logits if tuple(logits.shape[-2:]) == size else F.interpolate(
                logits, size=size, mode="bilinear", align_corners=False)
        masks = outputs.masks_queries_logits
        if self.architecture == "Mask2FormerForUniversalSegmentation":
            masks = F.interpolate(masks, size=MASK2FORMER_MASK_SIZE, mode="bilinear", align_corners=False)
        classes = outputs.class_queries_logits.softmax(dim=-1)[..., :-1]
        seg = torch.einsum("bqc, bqhw -> bchw", classes, masks.sigmoid())
        if tuple(seg.shape[-2:]) == size:
            return seg
        antialias = self.architecture == "OneFormerForUniversalSegmentation"  # torchvision resize's default
        return F.interpolate(seg, size=size, mode="bilinear", align_corners=False, antialias=antialias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised ``[B, 3, H, W]`` -> class scores ``[B, K, H, W]`` (eval mode)."""
        return self.scores(self.run(self.hf_inputs(images)), tuple(images.shape[-2:]))

    def forward_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named ``[B, C, h, w]`` features, encoder layers first, then ``decoder_input``. The input is padded on
        the right/bottom to a multiple of ``size_divisor`` (zeros: the mean colour, as the project's models do),
        so every grid has at least ``ceil(H / stride)`` cells."""
        from repsep.models.backbones import pad_to_multiple

        images = pad_to_multiple(images, self.size_divisor)
        captured: dict[str, torch.Tensor] = {}
        hook = None
        if self._classifier is not None:
            hook = self._classifier.register_forward_pre_hook(
                lambda _m, args: captured.__setitem__("decoder_input", args[0]))
        try:
            out = self.run(self.hf_inputs(images), hidden=True)
        finally:
            if hook is not None:
                hook.remove()
        feats = self._encoder_features(out, tuple(images.shape[-2:]))
        if self.architecture in QUERY:
            last = getattr(out, "pixel_decoder_last_hidden_state", None)  # OneFormer: the first pixel decoder state
            feats["decoder_input"] = last if last is not None else out.pixel_decoder_hidden_states[0]
        elif "decoder_input" in captured:
            feats["decoder_input"] = captured["decoder_input"]
        return feats

    def _encoder_features(self, out: Any, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        arch, cfg = self.architecture, self.hf.config
        if arch in QUERY:
            names = _stage_names(self.hf, len(out.encoder_hidden_states))
            return {f"backbone.{n}": h for n, h in zip(names, out.encoder_hidden_states, strict=True)}
        if arch == "SegformerForSemanticSegmentation":
            return {f"segformer.encoder.block.{i}": h for i, h in enumerate(out.hidden_states)}
        if arch == "UperNetForSemanticSegmentation":
            states = out.hidden_states[1:]  # [0] is the stem / patch embedding
            names = _stage_names(self.hf, len(states))
            return {f"backbone.{n}": _as_map(h, None) for n, h in zip(names, states, strict=True)}
        patch = int(cfg.patch_size)
        grid = (size[0] // patch, size[1] // patch)
        prefix = self.hf.base_model_prefix
        return {f"{prefix}.encoder.layer.{i}": _as_map(h, grid) for i, h in enumerate(out.hidden_states[1:])}


def _as_map(h: torch.Tensor, grid: tuple[int, int] | None) -> torch.Tensor:
    """``[B, C, h, w]`` as is; ``[B, T, C]`` tokens -> the last ``h * w`` (CLS / registers dropped) as a map."""
    if h.dim() == 4:
        return h
    b, t, c = h.shape
    if grid is None:
        side = int(round(t ** 0.5))
        grid = (side, t // side)
    n = grid[0] * grid[1]
    return h[:, t - n:].transpose(1, 2).reshape(b, c, *grid)


def _stage_names(hf_model: nn.Module, count: int) -> list[str]:
    """The backbone's own names of its ``count`` output stages (``out_features``, e.g. stage1..stage4)."""
    cfg = getattr(hf_model.config, "backbone_config", None)
    names = list(getattr(cfg, "out_features", None) or [])
    return names if len(names) == count else [f"stage{i + 1}" for i in range(count)]


def _final_classifier(hf_model: nn.Module, architecture: str) -> nn.Module | None:
    """The last Conv2d giving the class logits outside auxiliary heads (its input is ``decoder_input``)."""
    if architecture in QUERY:
        return None
    k = int(hf_model.config.num_labels)
    last = None
    for name, module in hf_model.named_modules():
        if isinstance(module, nn.Conv2d) and module.out_channels == k and "auxiliary" not in name:
            last = module
    return last
