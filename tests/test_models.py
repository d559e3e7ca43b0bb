"""Segmentor, registry and config: shapes, gradients, ablation switches, deploy, determinism."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from repsep.errors import UserError
from repsep.models import MODELS, ModelConfig, build_model, model_config

K = 5


def make(name: str = "rsseg_vit", seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build_model(model_config(name, num_classes=K, **kw))


def batch(size=(64, 96), b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, K, (b, *size), generator=g)
    target[0, :7] = 255
    return torch.randn(b, 3, *size, generator=g), target


# ---- config and registry --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODELS))
def test_config_round_trips_through_yaml(name):
    cfg = model_config(name, taps=(1, 2, 3, 4)) if name.endswith("vit") else model_config(name)
    back = ModelConfig.from_dict(yaml.safe_load(yaml.safe_dump(dataclasses.asdict(cfg))))
    assert back == cfg and back.name == name


def test_registry_sizes_and_errors():
    assert ModelConfig() == model_config("rsseg_vit")
    big = model_config("rsseg_vit", size="B")
    assert (big.depth, big.embed_dim, big.num_heads, big.width) == (None, None, None, 192)
    assert model_config("rsseg_vit", backbone="vit_large_patch16_384").size == "L"
    assert model_config("rsseg_vit", size="B").backbone == "vit_base_patch16_384"
    assert model_config("rsseg_vit", backbone="vit_base_patch8_224").size == "custom"
    ladder = [model_config("baseline_vit"), model_config("rsseg_vit", sasm=False, dca=False),
              model_config("rsseg_vit", dca=False), model_config("rsseg_vit")]
    assert [(c.pathway, c.sasm, c.dca) for c in ladder] == [(False, False, False), (True, False, False),
                                                            (True, True, False), (True, True, True)]
    with pytest.raises(UserError, match="baseline_vit, rsseg_vit, baseline_pvt, rsseg_pvt"):
        model_config("segformer")
    with pytest.raises(UserError, match="widht.*settable: .*width"):
        model_config("rsseg_vit", widht=64)
    with pytest.raises(UserError, match="tiny, T, S, B, L, custom"):
        model_config("rsseg_vit", size="XL")
    with pytest.raises(UserError, match="not vit_base_patch16_384"):
        model_config("rsseg_vit", size="L", backbone="vit_base_patch16_384")
    with pytest.raises(UserError, match="needs a pvt_v2_"):
        model_config("rsseg_pvt", backbone="vit_base_patch16_384")
    with pytest.raises(UserError, match="no RSSeg parts"):
        model_config("baseline_vit", sasm=True)
    with pytest.raises(UserError, match="model.taps"):
        model_config("rsseg_vit", taps=(3, 1))
    with pytest.raises(UserError, match="taps apply to plain ViTs only"):
        model_config("rsseg_pvt", taps=(1, 2, 3, 4))
    with pytest.raises(UserError, match="model.width: expected int"):
        model_config("rsseg_vit", width="wide")
    with pytest.raises(UserError, match="laplacian"):
        model_config("rsseg_vit", discrepancy="sobel")


# ---- forward ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(64, 96), (50, 70), (33, 17)])
def test_eval_logits_at_input_size(size):
    model = make().eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, K, *size)


@pytest.mark.parametrize("name, kw", [
    ("baseline_vit", {}),
    ("rsseg_vit", {}),
    ("rsseg_vit", dict(dca=False, sasm_gate="sigmoid", discrepancy="laplacian", sep_weight=0.1)),
    ("rsseg_vit", dict(sasm=False, ohem=True, ohem_min_kept=50)),
    ("rsseg_pvt", {}),
])
def test_every_parameter_gets_a_gradient_and_losses_are_finite(name, kw):
    model = make(name, **kw).train()
    images, target = batch((48, 80))
    out = model(images)
    assert out["logits"].shape == (2, K, 48, 80)
    losses = model.losses(out, target)
    expected = {"loss", "loss_ce"} | ({"loss_aux"} if model.aux_head is not None else set())
    expected |= {"loss_region"} if model.dca is not None else set()
    expected |= {"loss_sep"} if kw.get("sep_weight") else set()
    assert set(losses) == expected
    assert all(torch.isfinite(v) and v >= 0 for v in losses.values())
    assert torch.allclose(losses["loss"], sum(v for k, v in losses.items() if k != "loss"))
    losses["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert missing == []


def test_ablation_switches_change_the_modules_exactly():
    def children(name="rsseg_vit", **kw):
        model = make(name, **kw)
        return {n for n, m in model.named_children() if m is not None}, model

    base, m0 = children("baseline_vit")
    path, m1 = children(sasm=False, dca=False)
    sasm, _ = children(dca=False)
    full, _ = children()
    assert base == {"backbone", "fusion", "fuse", "head"}
    assert path - base == {"stem"} and m0.fusion.discrepancy is None and m1.fusion.discrepancy is not None
    assert sasm - path == {"sasm", "aux_head"}
    assert full - sasm == {"dca", "region_classifier"}
    assert m0.head.low_proj is None and m1.head.low_proj is not None


@pytest.mark.parametrize("kw, removed", [({}, {"region_classifier"}), (dict(dca=False), {"aux_head"})])
def test_deploy_removes_aux_heads_and_keeps_eval_output(kw, removed):
    model = make(**kw).eval()
    images, _ = batch((40, 56), b=1)
    with torch.no_grad():
        before = model(images)
        n_before = sum(p.numel() for p in model.parameters())
        model.deploy()
        after = model(images)
    assert torch.equal(before, after)
    keys = model.state_dict().keys()
    assert not any(k.split(".")[0] in removed for k in keys)
    assert n_before > sum(p.numel() for p in model.parameters())
    assert set(model.config.aux_modules) == removed


def test_eval_is_deterministic():
    model = make().eval()
    images, _ = batch(b=1)
    with torch.no_grad():
        assert torch.equal(model(images), model(images))
    assert torch.equal(make(seed=3).eval()(images), make(seed=3).eval()(images))


def test_forward_features_names_and_shapes():
    model = make().eval()
    feats = model.forward_features(torch.randn(1, 3, 50, 70))
    assert set(feats) == {f"vit.block{i}" for i in range(1, 5)} | {f"pathway.stage{k}" for k in range(1, 5)} | {
        "sasm", "dca", "decoder_input"}
    assert feats["vit.block4"].shape == (1, 96, 4, 5)  # ceil(50/16), ceil(70/16)
    assert feats["decoder_input"].shape == (1, 32, 7, 9)  # ceil(50/8), ceil(70/8)
    assert set(make("baseline_vit").eval().forward_features(torch.randn(1, 3, 32, 32))) == {
        "vit.block1", "vit.block2", "vit.block3", "vit.block4", "decoder_input"}


def test_optimizer_helpers():
    model = make()
    assert model.num_layers == 4
    assert model.layer_id("backbone.model.pos_embed") == 0
    assert model.layer_id("backbone.model.blocks.2.attn.qkv.weight") == 3
    assert model.layer_id("head.cls.weight") == model.layer_id("fusion.stages.0.0.conv2.weight") == 5
    no_wd = model.no_weight_decay()
    assert {"backbone.model.pos_embed", "backbone.model.cls_token", "head.cls.bias"} <= no_wd
    assert "head.cls.weight" not in no_wd and "backbone.model.blocks.0.attn.qkv.weight" not in no_wd
