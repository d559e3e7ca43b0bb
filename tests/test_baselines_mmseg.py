"""Faithfulness: each baseline, imported from an mmseg-built checkpoint, reproduces mmseg's logits.

mmsegmentation's own builders make a tiny model of each architecture (width 64, 4 blocks, random weights and
random BatchNorm statistics), saved as mmseg saves (``{"meta", "state_dict"}``); the project's importer converts it
and both run on the same normalised non-square input whose token grid (3x5, windows 2x3) differs from the
checkpoint's (4x4): whole and slide mode must agree to 1e-4 (fp32, CPU).
"""

from __future__ import annotations

import pytest
import torch
from mmseg_oracle import build_mmseg, meta_cfg_text, mmseg_logits, require_mmseg, save_mmseg, tiny_model_cfg

from repsep.engine.inference import predict
from repsep.models.importers.mmseg import import_mmseg

ARCHS = ("upernet_vit", "setr_naive", "setr_pup", "setr_mla", "segmenter_linear", "segmenter_mask")


@pytest.mark.parametrize("arch", ARCHS)
def test_imported_model_reproduces_mmseg_logits(arch, tmp_path):
    require_mmseg()
    ref = build_mmseg(tiny_model_cfg(arch), seed=3)
    ckpt = tmp_path / f"{arch}.pth"
    save_mmseg(ref, ckpt, cfg_text=meta_cfg_text(arch))
    imported = import_mmseg(ckpt, arch)
    model = imported.model
    assert not model.training and model.aux_head is None
    torch.manual_seed(0)
    x = torch.randn(1, 3, 48, 80)  # grid 3x5 vs the checkpoint's 4x4
    # the project feeds ImageNet-normalised input; mmseg gets the same pixels in its own normalisation
    x_mm = x * model.input_scale.view(1, 3, 1, 1) + model.input_shift.view(1, 3, 1, 1)
    whole = (predict(model, x) - mmseg_logits(ref, x_mm)).abs().max().item()
    slide = (predict(model, x, mode="slide", crop=(32, 48), stride=(16, 32))
             - mmseg_logits(ref, x_mm, "slide", (32, 48), (16, 32))).abs().max().item()
    y = torch.randn(1, 3, 50, 70)  # not a multiple of the patch: padded inside the patch embedding, as mmseg
    y_mm = y * model.input_scale.view(1, 3, 1, 1) + model.input_shift.view(1, 3, 1, 1)
    odd = (predict(model, y) - mmseg_logits(ref, y_mm)).abs().max().item()
    print(f"{arch}: max |diff| whole {whole:.2e} slide {slide:.2e} 50x70 {odd:.2e}")
    assert whole <= 1e-4 and slide <= 1e-4 and odd <= 1e-4
    assert mmseg_logits(ref, x_mm).abs().max() > 1e-3  # not a trivially zero comparison
