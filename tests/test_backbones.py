"""Backbones: tap shapes, padding, pruning, layer ids, and loading local weights (.pth/.safetensors)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed

from repsep.errors import UserError
from repsep.models.backbones import PyramidBackbone, ViTBackbone, default_taps, load_pretrained, pad_to_multiple

TINY = dict(depth=4, embed_dim=96, num_heads=3, img_size=64)


def tiny_vit(seed: int = 0, taps=(), **kw) -> ViTBackbone:
    torch.manual_seed(seed)
    return ViTBackbone("vit_tiny_patch16_384", taps, **{**TINY, **kw}).eval()


def test_default_taps_are_quarter_ends():
    assert default_taps(12) == (3, 6, 9, 12)
    assert default_taps(24) == (6, 12, 18, 24)
    assert default_taps(4) == (1, 2, 3, 4)
    with pytest.raises(UserError, match="at least 4"):
        default_taps(3)


def test_pad_to_multiple():
    x = torch.ones(1, 1, 5, 16)
    y = pad_to_multiple(x, 8)
    assert y.shape == (1, 1, 8, 16)
    assert y.sum() == 5 * 16 and y[..., 5:, :].abs().sum() == 0
    assert pad_to_multiple(x[..., :4, :], 4) is not None and pad_to_multiple(y, 8) is y


@pytest.mark.parametrize("size", [(64, 96), (50, 70), (16, 16)])
def test_vit_tap_shapes(size):
    vit = tiny_vit()
    with torch.no_grad():
        taps = vit(torch.randn(2, 3, *size))
        blocks = vit(torch.randn(1, 3, *size), all_blocks=True)
    grid = (-(-size[0] // 16), -(-size[1] // 16))
    assert vit.taps == (1, 2, 3, 4)
    assert [t.shape for t in taps] == [torch.Size([2, 96, *grid])] * 4
    assert len(blocks) == vit.num_layers == 4


def test_vit_blocks_after_last_tap_are_pruned():
    vit = tiny_vit(taps=(1, 2))
    assert vit.num_layers == 2 and isinstance(vit.model.norm, torch.nn.Identity)
    with pytest.raises(UserError, match="model.taps"):
        tiny_vit(taps=(2, 5))


def test_vit_taps_equal_the_blocks_they_name():
    vit = tiny_vit(taps=(2, 4))
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        taps, blocks = vit(x), vit(x, all_blocks=True)
    assert torch.equal(taps[0], blocks[1]) and torch.equal(taps[1], blocks[3])


def test_pyramid_stage_shapes_and_padding_to_32():
    torch.manual_seed(0)
    pvt = PyramidBackbone("pvt_v2_b0", (1, 1, 1, 1)).eval()
    with torch.no_grad():
        maps = pvt(torch.randn(1, 3, 50, 70))  # padded to 64 x 96
    assert [tuple(m.shape[1:]) for m in maps] == [(32, 16, 24), (64, 8, 12), (160, 4, 6), (256, 2, 3)]
    assert pvt.out_dims == [32, 64, 160, 256] and pvt.num_layers == 4


def test_layer_ids():
    vit = tiny_vit()
    assert [vit.layer_id(n) for n in ("pos_embed", "cls_token", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
                                       "blocks.3.mlp.fc2.bias")] == [0, 0, 0, 1, 4]
    pvt = PyramidBackbone("pvt_v2_b0", (1, 2, 1, 1))
    assert [pvt.layer_id(n) for n in ("patch_embed.proj.weight", "stages.0.blocks.0.norm1.weight",
                                       "stages.1.downsample.proj.weight", "stages.1.blocks.1.mlp.fc1.weight",
                                       "stages.1.norm.weight", "stages.3.blocks.0.attn.q.weight")] == [0, 1, 2, 3, 3, 5]


def test_unknown_backbone_is_user_error():
    with pytest.raises(UserError, match="vit_large_patch16_384"):
        ViTBackbone("resnet50", ())


def _timm_state(vit: ViTBackbone) -> dict[str, torch.Tensor]:
    """A timm-style classification checkpoint: backbone weights + final norm + classifier head."""
    state = {k: v.clone() for k, v in vit.model.state_dict().items()}
    state["norm.weight"], state["norm.bias"] = torch.ones(96), torch.zeros(96)
    state["head.weight"], state["head.bias"] = torch.randn(1000, 96), torch.zeros(1000)
    return state


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_local_checkpoint_round_trip(tmp_path, fmt):
    src, dst = tiny_vit(seed=1), tiny_vit(seed=2)
    x = torch.randn(1, 3, 48, 64)
    path = tmp_path / f"vit.{fmt}"
    if fmt == "pth":
        torch.save({"state_dict": _timm_state(src)}, path)
    else:
        save_file(_timm_state(src), str(path))
    with torch.no_grad():
        assert not torch.equal(src(x)[-1], dst(x)[-1])
        load_pretrained(dst, path)
        assert all(torch.equal(a, b) for a, b in zip(src(x), dst(x), strict=True))


def test_position_embedding_is_resampled_to_the_model_grid(tmp_path):
    src, dst = tiny_vit(seed=1), tiny_vit(seed=2, img_size=96)
    path = tmp_path / "vit.pth"
    torch.save(_timm_state(src), path)
    load_pretrained(dst, path)
    expected = resample_abs_pos_embed(src.model.pos_embed.detach(), new_size=(6, 6), old_size=(4, 4),
                                      num_prefix_tokens=1)
    assert dst.model.pos_embed.shape == (1, 37, 96)
    assert torch.allclose(dst.model.pos_embed, expected)


def test_checkpoint_that_does_not_fit_names_the_keys(tmp_path):
    state = _timm_state(tiny_vit())
    del state["blocks.0.attn.qkv.weight"]
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save({"model": state}, path)
    with pytest.raises(UserError, match=r"missing keys \[blocks\.0\.attn\.qkv\.weight\].*unexpected keys \[extra"):
        load_pretrained(tiny_vit(), path)
    wide = ViTBackbone("vit_tiny_patch16_384", (), depth=4, embed_dim=48, num_heads=3, img_size=64)
    torch.save(wide.model.state_dict(), path)
    with pytest.raises(UserError, match="shape mismatches"):
        load_pretrained(tiny_vit(), path)


def test_unreadable_weight_files(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read weights"):
        load_pretrained(tiny_vit(), garbage)
    with pytest.raises(UserError, match="file not found"):
        load_pretrained(tiny_vit(), tmp_path / "missing.safetensors")
    with pytest.raises(UserError, match="unknown weight format"):
        load_pretrained(tiny_vit(), tmp_path / "weights.ckpt")
