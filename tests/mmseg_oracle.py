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
