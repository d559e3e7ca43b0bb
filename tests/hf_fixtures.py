"""Tiny random transformers segmentation models saved with ``save_pretrained`` (for ``models import hf`` tests).

Each builder returns a model in eval mode predicting the 19 Cityscapes classes (``id2label`` = the project's
class names) at 64x64; :func:`save_folder` writes it with a ``preprocessor_config.json`` of known mean/std.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from repsep.data.labels import CITYSCAPES

MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)
"""The folders' preprocessor normalisation (0-1 scale, rescale 1/255): 0-255 mean (127.5, 102, 76.5)."""
WORDS = ("the", "task", "is", "semantic")


def _labels() -> dict:
    names = CITYSCAPES.classes
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def _swin():
    import transformers as T

    return T.SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                        window_size=2, out_features=["stage1", "stage2", "stage3", "stage4"])


def build(arch: str) -> torch.nn.Module:
    """A tiny random ``arch`` (segformer, beit, dpt, upernet_convnext, upernet_swin, mask2former, maskformer,
    oneformer), eval mode, seeded."""
    import transformers as T

    torch.manual_seed(0)
    vit = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=64,
               patch_size=16, **_labels())
    if arch == "segformer":
        c = T.SegformerConfig(depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1], hidden_sizes=[8, 16, 24, 32],
                              num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=32, **_labels())
        return T.SegformerForSemanticSegmentation(c).eval()
    if arch == "beit":
        c = T.BeitConfig(out_indices=[1, 2, 3, 4], use_relative_position_bias=True, pool_scales=[1, 2],
                         auxiliary_channels=16, use_auxiliary_head=True, **vit)
        return T.BeitForSemanticSegmentation(c).eval()
    if arch == "dpt":
        c = T.DPTConfig(backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16,
                        use_auxiliary_head=True, reassemble_factors=[4, 2, 1, 0.5], **vit)
        return T.DPTForSemanticSegmentation(c).eval()
    if arch.startswith("upernet"):
        bb = _swin() if arch.endswith("swin") else T.ConvNextConfig(
            hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], out_features=["stage1", "stage2", "stage3", "stage4"])
        c = T.UperNetConfig(backbone_config=bb, hidden_size=16, auxiliary_channels=8, pool_scales=[1, 2],
                            use_auxiliary_head=True, **_labels())
        return T.UperNetForSemanticSegmentation(c).eval()
    if arch == "mask2former":
        c = T.Mask2FormerConfig(backbone_config=_swin(), hidden_dim=32, num_queries=6, encoder_layers=1,
                                decoder_layers=2, encoder_feedforward_dim=32, dim_feedforward=32, mask_feature_size=32,
                                feature_size=32, num_attention_heads=2, use_auxiliary_loss=False, **_labels())
        return T.Mask2FormerForUniversalSegmentation(c).eval()
    if arch == "maskformer":
        dec = dict(model_type="detr", d_model=32, encoder_layers=1, decoder_layers=2, decoder_attention_heads=2,
                   encoder_attention_heads=2, decoder_ffn_dim=32, encoder_ffn_dim=32, num_queries=6)
        c = T.MaskFormerConfig(backbone_config=_swin(), mask_feature_size=32, fpn_feature_size=32, num_queries=6,
                               decoder_config=dec, use_auxiliary_loss=False, **_labels())
        return T.MaskFormerForInstanceSegmentation(c).eval()
    if arch == "oneformer":
        c = T.OneFormerConfig(backbone_config=_swin(), hidden_dim=32, num_queries=6, encoder_layers=1,
                              decoder_layers=2, dim_feedforward=32, encoder_feedforward_dim=32, mask_dim=32,
                              conv_dim=32, num_attention_heads=2, text_encoder_width=32, text_encoder_num_layers=1,
                              text_encoder_context_length=8, text_encoder_vocab_size=50, task_seq_len=8,
                              text_encoder_proj_layers=1, text_encoder_n_ctx=2, use_auxiliary_loss=False,
                              is_training=False, **_labels())
        return T.OneFormerForUniversalSegmentation(c).eval()
    raise ValueError(arch)


def write_tokenizer(folder: Path) -> None:
    """A tiny CLIP BPE vocabulary (``vocab.json`` + ``merges.txt``) holding the words of the task prompt."""
    tokens = [*"abcdefghijklmnopqrstuvwxyz", *(c + "</w>" for c in "abcdefghijklmnopqrstuvwxyz")]
    merges = ["#version: 0.2"]
    for w in WORDS:
        parts = [*w[:-1], w[-1] + "</w>"]
        while len(parts) > 1:
            merges.append(f"{parts[0]} {parts[1]}")
            parts = [parts[0] + parts[1], *parts[2:]]
            tokens.append(parts[0])
    vocab = {t: i for i, t in enumerate(dict.fromkeys([*tokens, "<|startoftext|>", "<|endoftext|>"]))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("\n".join(merges) + "\n")


def save_folder(model: torch.nn.Module, folder: Path, preprocessor: bool = True) -> Path:
    """``model.save_pretrained(folder)`` + a ``preprocessor_config.json`` (:data:`MEAN` / :data:`STD`)."""
    model.save_pretrained(folder)
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(json.dumps({
            "do_normalize": True, "image_mean": list(MEAN), "image_std": list(STD), "do_rescale": True,
            "rescale_factor": 1 / 255, "do_resize": True, "size": {"height": 64, "width": 64}}))
    if type(model).__name__.startswith("OneFormer"):
        write_tokenizer(folder)
    return folder
