"""The recognisable baselines as project models: registry, shapes, train outputs, deploy, cost."""

from __future__ import annotations

import pytest
import torch

from repsep.models import build_model, model_config
from repsep.models.baselines import BASELINES
from repsep.models.profile import model_info

AUX = {"upernet_vit": 1, "setr_naive": 3, "setr_pup": 3, "setr_mla": 4, "segmenter_linear": 0, "segmenter_mask": 0}


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_forward_train_deploy(name):
    torch.manual_seed(0)
    model = build_model(model_config(name, num_classes=7))
    x = torch.randn(2, 3, 40, 72)  # not a multiple of the patch: padded inside, logits at the input size
    model.train()
    out = model(x)
    assert out["logits"].shape == (2, 7, 40, 72)
    assert len(out.get("aux_logits", [])) == AUX[name]
    losses = model.losses(out, torch.randint(0, 7, (2, 40, 72)))
    assert ("loss_aux" in losses) == (AUX[name] > 0) and torch.isfinite(losses["loss"])
    model.eval()
    with torch.no_grad():
        before = model(x)
        after = model.deploy()(x)
    assert model.aux_head is None and torch.equal(before, after)
    assert {model.layer_id(n) for n, _ in model.named_parameters()} <= set(range(model.num_layers + 2))


def test_baseline_presets_follow_mmseg():
    assert model_config("setr_naive", size="L").taps == (10, 15, 20, 24)  # mmseg out_indices (9, 14, 19, 23)
    assert model_config("setr_mla", size="L").with_cls_token is False
    up = model_config("upernet_vit", size="B")
    assert (up.taps, up.width, up.aux_width, up.pos_interp) == ((3, 6, 9, 12), 512, 256, "bicubic")
    seg = model_config("segmenter_mask", size="L")
    assert (seg.taps, seg.final_norm, seg.width) == ((24,), True, 1024)


def test_model_info_counts_aux_as_training_only():
    info = model_info(model_config("upernet_vit"), (64, 64))
    assert info["params"]["training_only"] > 0
    assert info["params"]["inference"] == info["params"]["total"] - info["params"]["training_only"]
    assert info["gmacs"]["backbone"] > 0 and info["gmacs"]["extra"] > 0


def test_costs_match_mmseg_builds():
    from repsep.models.baselines.mmseg_costs import MMSEG_COSTS

    assert set(MMSEG_COSTS) == {(a, s) for a in BASELINES for s in ("B", "L")}
    info = model_info(model_config("setr_pup", size="B", num_classes=150, img_size=512), (512, 512))
    params, gmacs = MMSEG_COSTS[("setr_pup", "B")]
    assert abs(info["params"]["inference"] / 1e6 - params) < 0.01 and abs(info["gmacs"]["total"] - gmacs) < 0.1
