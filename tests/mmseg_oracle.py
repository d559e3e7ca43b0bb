"""mmsegmentation as a test oracle: import it without the compiled ``mmcv.ops`` and build its models.

mmseg 1.2.2 imports ``mmcv.ops`` (compiled; absent from mmcv-lite) at import time, though the ViT segmenters
tested here use none of those ops. :func:`mmseg_models` installs a stand-in ``mmcv.ops`` whose every public name
is a dummy class, then imports mmseg and registers its modules. Tests call ``pytest.importorskip``-style
:func:`require_mmseg` so that an environment without the ``oracle`` extra skips them.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch


def _install_stub() -> None:
    if "mmcv.ops" in sys.modules:
        return
    stub = types.ModuleType("mmcv.ops")

    def __getattr__(name: str):  # noqa: N807 - module-level __getattr__ (PEP 562)
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None})

    stub.__getattr__ = __getattr__
    sys.modules["mmcv.ops"] = stub


def require_mmseg():
    """mmseg's ``MODELS`` registry with every mmseg module registered (skips the test when mmseg is missing)."""
    pytest.importorskip("mmseg")
    pytest.importorskip("mmengine")
    _install_stub()
    import warnings

    warnings.filterwarnings("ignore", module="mmseg")
    warnings.filterwarnings("ignore", module="mmengine")
    import mmseg.models  # noqa: F401 - registers the modules
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    return MODELS


def build_mmseg(model_cfg: dict, seed: int = 0) -> torch.nn.Module:
    """An mmseg ``EncoderDecoder`` from a config dict, with random weights and random BatchNorm statistics."""
    models = require_mmseg()
    torch.manual_seed(seed)
    model = models.build(model_cfg)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()


def save_mmseg(model: torch.nn.Module, path, cfg_text: str | None = None) -> None:
    """Save as mmseg's runner does: ``{"meta": {...}, "state_dict": ...}`` (``meta["cfg"]``: the config text)."""
    k = model.decode_head.num_classes
    meta = {"mmseg_version": "1.2.2", "dataset_meta": {"classes": tuple(f"c{i}" for i in range(k))}}
    if cfg_text is not None:
        meta["cfg"] = cfg_text
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)


def mmseg_logits(model: torch.nn.Module, x: torch.Tensor, mode: str = "whole", crop=None, stride=None
                 ) -> torch.Tensor:
    """mmseg's logits at the input size for a normalised batch: ``encode_decode`` (whole) or ``slide_inference``."""
    metas = [dict(img_shape=tuple(x.shape[-2:]), ori_shape=tuple(x.shape[-2:]), pad_shape=tuple(x.shape[-2:]))]
    with torch.no_grad():
        if mode == "whole":
            return model.encode_decode(x, metas)
        from mmengine.config import ConfigDict

        model.test_cfg = ConfigDict(mode="slide", crop_size=crop, stride=stride)
        return model.slide_inference(x, metas)


# ---- tiny mmseg configs of the six ViT architectures --------------------------------------------------------

D = 64
BN = dict(type="BN", requires_grad=True)
LN6 = dict(type="LN", eps=1e-6)
CE = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)
AUX_CE = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4)


def _vit(**kw) -> dict:
    return dict(type="VisionTransformer", img_size=(64, 64), patch_size=16, in_channels=3, embed_dims=D, num_layers=4,
                num_heads=1, mlp_ratio=4, qkv_bias=True, norm_cfg=LN6, **kw)


def _setr_up(in_index: int, num_convs: int, up_scale: int, kernel: int, weight: dict, K: int) -> dict:  # noqa: N803
    return dict(type="SETRUPHead", in_channels=D, channels=24, in_index=in_index, num_classes=K, dropout_ratio=0,
                norm_cfg=BN, num_convs=num_convs, up_scale=up_scale, kernel_size=kernel, align_corners=False,
                loss_decode=weight)


def tiny_configs(K: int = 5) -> dict[str, dict]:  # noqa: N803
    """mmseg model configs of the six architectures at a tiny size (width 64, 4 blocks, K classes)."""
    return {
        "upernet_vit": dict(
            backbone=_vit(out_indices=(0, 1, 2, 3), with_cls_token=True, interpolate_mode="bicubic"),
            neck=dict(type="MultiLevelNeck", in_channels=[D] * 4, out_channels=48, scales=[4, 2, 1, 0.5]),
            decode_head=dict(type="UPerHead", in_channels=[48] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
                             channels=32, dropout_ratio=0.1, num_classes=K, norm_cfg=BN, align_corners=False,
                             loss_decode=CE),
            auxiliary_head=dict(type="FCNHead", in_channels=48, in_index=3, channels=16, num_convs=1,
                                concat_input=False, dropout_ratio=0.1, num_classes=K, norm_cfg=BN,
                                align_corners=False, loss_decode=AUX_CE)),
        "setr_naive": dict(
            backbone=_vit(out_indices=(0, 1, 2, 3), with_cls_token=True, interpolate_mode="bilinear", drop_rate=0.1),
            decode_head=_setr_up(3, 1, 4, 1, CE, K),
            auxiliary_head=[_setr_up(i, 1, 4, 1, AUX_CE, K) for i in range(3)]),
        "setr_pup": dict(
            backbone=_vit(out_indices=(0, 1, 2, 3), with_cls_token=True, interpolate_mode="bilinear", drop_rate=0.1),
            decode_head=_setr_up(3, 4, 2, 3, CE, K),
            auxiliary_head=[_setr_up(i, 1, 4, 3, AUX_CE, K) for i in range(3)]),
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
            decode_head=dict(type="SegmenterMaskTransformerHead", in_channels=D, channels=D, num_classes=K,
                             num_layers=2, num_heads=2, embed_dims=D, dropout_ratio=0.0, loss_decode=CE)),
    }
MEANS = {"segmenter_linear": (127.5,) * 3, "segmenter_mask": (127.5,) * 3}


def tiny_model_cfg(arch: str, num_classes: int = 5) -> dict:
    """The ``EncoderDecoder`` config of ``arch`` (see :func:`tiny_configs`)."""
    return dict(type="EncoderDecoder", train_cfg=dict(), test_cfg=dict(mode="whole"), **tiny_configs(num_classes)[arch])


def meta_cfg_text(arch: str, num_classes: int = 5) -> str:
    """The config text mmengine's runner records in ``meta["cfg"]``."""
    from mmengine.config import Config

    mean = MEANS.get(arch, (123.675, 116.28, 103.53))
    std = MEANS.get(arch, (58.395, 57.12, 57.375))
    pre = dict(type="SegDataPreProcessor", mean=list(mean), std=list(std), bgr_to_rgb=True)
    return Config(dict(model=dict(data_preprocessor=pre, **tiny_model_cfg(arch, num_classes)))).pretty_text
