"""Backbone weights for ``pretrained=``: mmseg ``{"state_dict": {"backbone.…"}}`` files and DeiT names."""

from __future__ import annotations

import torch

from repsep.models import build_model, load_pretrained, model_config


def test_mmseg_backbone_checkpoint_loads_into_the_timm_vit(tmp_path, capsys):
    from repsep.models.importers.mmseg_keys import backbone_key

    src = build_model(model_config("upernet_vit", img_size=(64, 64))).backbone  # grid 4x4
    # write the backbone under mmseg's key names (the inverse of the importer's map), no patch bias, with a head
    inverse = {}
    for mm in ["cls_token", "pos_embed", "patch_embed.projection.weight"] + [
            f"layers.{i}.{k}" for i in range(4) for k in (
                "ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "attn.attn.in_proj_weight",
                "attn.attn.in_proj_bias", "attn.attn.out_proj.weight", "attn.attn.out_proj.bias",
                "ffn.layers.0.0.weight", "ffn.layers.0.0.bias", "ffn.layers.1.weight", "ffn.layers.1.bias")]:
        inverse["backbone." + mm] = src.state_dict()[backbone_key(mm)]
    inverse["decode_head.conv_seg.weight"] = torch.zeros(5, 32, 1, 1)
    torch.save({"meta": {}, "state_dict": inverse}, tmp_path / "mmseg.pth")
    dst = build_model(model_config("upernet_vit", img_size=(64, 128))).backbone  # grid 4x8: resized
    load_pretrained(dst, tmp_path / "mmseg.pth")
    line = capsys.readouterr().out.strip()
    assert "resized pos_embed 4x4 -> 4x8" in line and "dropped 1 (decode_head.conv_seg.weight)" in line
    assert torch.equal(dst.model.blocks[2].attn.qkv.weight, src.model.blocks[2].attn.qkv.weight)
    assert torch.equal(dst.model.patch_embed.proj.bias, torch.zeros(96))


def test_final_norm_of_a_timm_file_goes_to_the_segmenter_final_ln(tmp_path):
    src = build_model(model_config("segmenter_linear")).backbone.model
    state = {k: v for k, v in src.state_dict().items()}
    state["norm.weight"], state["norm.bias"] = torch.full((96,), 2.0), torch.full((96,), 0.5)
    torch.save(state, tmp_path / "timm.pth")
    dst = build_model(model_config("segmenter_linear")).backbone
    load_pretrained(dst, tmp_path / "timm.pth")
    assert torch.equal(dst.final_ln.weight, state["norm.weight"]) and torch.equal(dst.final_ln.bias, state["norm.bias"])


def test_deit_names_are_plain_vits():
    cfg = model_config("segmenter_linear", backbone="deit_small_patch16_224", depth=4)
    assert cfg.size == "custom" and build_model(cfg).backbone.embed_dim == 384
