"""Faithfulness: each baseline, imported from an mmseg-built checkpoint, reproduces mmseg's logits.

mmsegmentation's own builders make a tiny model of each architecture (width 64, 4 blocks, random weights and
random BatchNorm statistics), saved as mmseg saves (``{"meta", "state_dict"}``); the project's importer converts it
and both run on the same normalised non-square input whose token grid (3x5, windows 2x3) differs from the
checkpoint's (4x4): whole and slide mode must agree to 1e-4 (fp32, CPU).
"""

from __future__ import annotations

import pytest
import torch
from mmseg_oracle import build_mmseg, mmseg_logits, require_mmseg, save_mmseg

from repsep.engine.inference import predict
from repsep.models.importers.mmseg import import_mmseg

D, K = 64, 5
BN = dict(type="BN", requires_grad=True)
LN6 = dict(type="LN", eps=1e-6)
CE = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)
AUX_CE = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4)


def _vit(**kw) -> dict:
    return dict(type="VisionTransformer", img_size=(64, 64), patch_size=16, in_channels=3, embed_dims=D, num_layers=4,
                num_heads=1, mlp_ratio=4, qkv_bias=True, norm_cfg=LN6, **kw)


def _setr_up(in_index: int, num_convs: int, up_scale: int, kernel: int, weight: dict) -> dict:
    return dict(type="SETRUPHead", in_channels=D, channels=24, in_index=in_index, num_classes=K, dropout_ratio=0,
                norm_cfg=BN, num_convs=num_convs, up_scale=up_scale, kernel_size=kernel, align_corners=False,
                loss_decode=weight)


CONFIGS = {
    "upernet_vit": dict(
        backbone=_vit(out_indices=(0, 1, 2, 3), with_cls_token=True, interpolate_mode="bicubic"),
        neck=dict(type="MultiLevelNeck", in_channels=[D] * 4, out_channels=48, scales=[4, 2, 1, 0.5]),
        decode_head=dict(type="UPerHead", in_channels=[48] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
                         channels=32, dropout_ratio=0.1, num_classes=K, norm_cfg=BN, align_corners=False,
                         loss_decode=CE),
        auxiliary_head=dict(type="FCNHead", in_channels=48, in_index=3, channels=16, num_convs=1, concat_input=False,
                            dropout_ratio=0.1, num_classes=K, norm_cfg=BN, align_corners=False, loss_decode=AUX_CE)),
    "setr_naive": dict(
        backbone=_vit(out_indices=(0, 1, 2, 3), with_cls_token=True, interpolate_mode="bilinear", drop_rate=0.1),
        decode_head=_setr_up(3, 1, 4, 1, CE),
        auxiliary_head=[_setr_up(i, 1, 4, 1, AUX_CE) for i in range(3)]),
    "setr_pup": dict(
        backbone=_vit(out_indices=(0, 1, 2, 3), with_cls_token=True, interpolate_mode="bilinear", drop_rate=0.1),
        decode_head=_setr_up(3, 4, 2, 3, CE),
        auxiliary_head=[_setr_up(i, 1, 4, 3, AUX_CE) for i in range(3)]),
    "setr_mla": dict(
        backbone=_vit(out_indices=(0, 1, 2, 3), with_cls_token=False, interpolate_mode="bilinear", drop_rate=0.1),
        neck=dict(type="MLANeck", in_channels=[D] * 4, out_channels=32, norm_cfg=BN, act_cfg=dict(type="ReLU")),
        decode_head=dict(type="SETRMLAHead", in_channels=(32,) * 4, channels=64, in_index=(0, 1, 2, 3),
                         dropout_ratio=0, mla_channels=16, num_classes=K, norm_cfg=BN, align_corners=False,
                         loss_decode=CE),
        auxiliary_head=[dict(type="FCNHead", in_channels=32, channels=32, in_index=i, dropout_ratio=0, num_convs=0,
                             kernel_size=1, concat_input=False, num_classes=K, align_corners=False,
                             loss_decode=AUX_CE) for i in range(4)]),
    "segmenter_linear": dict(
        backbone=_vit(final_norm=True, with_cls_token=True, interpolate_mode="bicubic"),
        decode_head=dict(type="FCNHead", in_channels=D, channels=D, num_convs=0, dropout_ratio=0.0,
                         concat_input=False, num_classes=K, loss_decode=CE)),
    "segmenter_mask": dict(
        backbone=_vit(final_norm=True, with_cls_token=True, interpolate_mode="bicubic"),
        decode_head=dict(type="SegmenterMaskTransformerHead", in_channels=D, channels=D, num_classes=K, num_layers=2,
                         num_heads=2, embed_dims=D, dropout_ratio=0.0, loss_decode=CE)),
}
MEANS = {"segmenter_linear": (127.5,) * 3, "segmenter_mask": (127.5,) * 3}


def _model_cfg(arch: str) -> dict:
    return dict(type="EncoderDecoder", train_cfg=dict(), test_cfg=dict(mode="whole"), **CONFIGS[arch])


def _meta_cfg_text(arch: str) -> str:
    """The config text mmengine's runner records in ``meta["cfg"]``."""
    from mmengine.config import Config

    mean = MEANS.get(arch, (123.675, 116.28, 103.53))
    std = MEANS.get(arch, (58.395, 57.12, 57.375))
    return Config(dict(model=dict(data_preprocessor=dict(type="SegDataPreProcessor", mean=list(mean), std=list(std),
                                                         bgr_to_rgb=True), **_model_cfg(arch)))).pretty_text


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_imported_model_reproduces_mmseg_logits(arch, tmp_path):
    require_mmseg()
    ref = build_mmseg(_model_cfg(arch), seed=3)
    ckpt = tmp_path / f"{arch}.pth"
    save_mmseg(ref, ckpt, cfg_text=_meta_cfg_text(arch))
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
    print(f"{arch}: max |diff| whole {whole:.2e} slide {slide:.2e}")
    assert whole <= 1e-4 and slide <= 1e-4
    assert mmseg_logits(ref, x_mm).abs().max() > 1e-3  # not a trivially zero comparison
