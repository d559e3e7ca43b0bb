"""Size and cost of a model: parameters (backbone / extra / total, training-only) and inference GFLOPs.

The model is built on the ``meta`` device (no memory, no weights) and run once under
``torch.utils.flop_counter.FlopCounterMode`` in eval mode, deployed, batch 1. FlopCounterMode counts 2 FLOPs per
multiply-add of matmuls, convolutions and attention; ``gmacs`` (= GFLOPs / 2) is the number that fvcore/mmcv
(and most segmentation papers) call "GFLOPs". Element-wise ops, norms, pooling and resizing are not counted.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.flop_counter import FlopCounterMode

from repsep.errors import UserError
from repsep.models.config import ModelConfig
from repsep.models.segmentor import build_model


def parse_image_size(text: str, option: str = "--size") -> tuple[int, int]:
    """``"512x1024"`` -> (512, 1024); ``"640"`` -> (640, 640)."""
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except ValueError:
        h = w = 0
    if len(parts) > 2 or h < 1 or w < 1:
        raise UserError(f"{option} {text!r}: expected HxW in pixels, e.g. 512x1024, or one number")
    return h, w


def _count(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def model_info(cfg: ModelConfig, image_size: tuple[int, int] = (512, 512)) -> dict:
    """Parameters and inference cost of ``cfg`` at ``image_size`` (H, W).

    Returns a dict: ``params`` {backbone, extra, total, trainable, training_only, inference} (counts),
    ``gflops`` {backbone, extra, total} and ``gmacs`` (same keys), ``modules`` (one row per top-level module:
    name, params, gflops, in_inference), ``image_size``, ``config``.
    """
    with torch.device("meta"):
        model = build_model(cfg)
    total = _count(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    aux = {name: _count(getattr(model, name)) for name in cfg.aux_modules}
    modules = [dict(name=name, params=_count(m), in_inference=name not in aux)
               for name, m in model.named_children() if m is not None]
    model.eval().deploy()
    counter = FlopCounterMode(display=False, depth=2)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, *image_size, device="meta"))
    root = f"{type(model).__name__}."
    per_module = {k.removeprefix(root): sum(v.values()) for k, v in counter.get_flop_counts().items()}
    flops_total = counter.get_total_flops()
    for row in modules:
        row["gflops"] = per_module.get(row["name"], 0) / 1e9 if row["in_inference"] else None
    backbone = _count(model.backbone)
    gflops = {"total": flops_total / 1e9, "backbone": per_module.get("backbone", 0) / 1e9}
    gflops["extra"] = gflops["total"] - gflops["backbone"]
    return {
        "model": cfg.name,
        "image_size": list(image_size),
        "params": {"backbone": backbone, "extra": total - backbone, "total": total, "trainable": trainable,
                   "training_only": sum(aux.values()), "inference": total - sum(aux.values())},
        "gflops": gflops,
        "gmacs": {k: v / 2 for k, v in gflops.items()},
        "modules": modules,
        "config": dataclasses.asdict(cfg),
    }


def format_info(info: dict) -> str:
    """A plain-text report of :func:`model_info` for people."""
    p, g, m = info["params"], info["gflops"], info["gmacs"]
    h, w = info["image_size"]
    lines = [
        f"model {info['model']} (size {info['config']['size']}, backbone {info['config']['backbone']})",
        "",
        f"{'':<22}{'params (M)':>12}{'GFLOPs':>12}{'GMACs':>12}",
        f"{'backbone':<22}{p['backbone'] / 1e6:>12.2f}{g['backbone']:>12.2f}{m['backbone']:>12.2f}",
        f"{'extra (decoder)':<22}{p['extra'] / 1e6:>12.2f}{g['extra']:>12.2f}{m['extra']:>12.2f}",
        f"{'total':<22}{p['total'] / 1e6:>12.2f}{g['total']:>12.2f}{m['total']:>12.2f}",
        f"{'  training only (aux)':<22}{p['training_only'] / 1e6:>12.2f}",
        f"{'  inference':<22}{p['inference'] / 1e6:>12.2f}",
        f"{'  trainable':<22}{p['trainable'] / 1e6:>12.2f}",
        "",
        f"GFLOPs: inference at {h}x{w}, batch 1, FlopCounterMode (2 FLOPs per multiply-add; GMACs = GFLOPs / 2)",
        "",
        f"{'module':<20}{'params (M)':>12}{'GFLOPs':>10}  used in",
    ]
    for row in info["modules"]:
        used = "training + inference" if row["in_inference"] else "training only (aux, removed by deploy)"
        gf = f"{row['gflops']:>10.2f}" if row["gflops"] is not None else f"{'-':>10}"
        lines.append(f"{row['name']:<20}{row['params'] / 1e6:>12.3f}{gf}  {used}")
    return "\n".join(lines)
