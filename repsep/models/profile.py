"""Size and cost of a model, in the project's one convention: **GMACs** and **deployed parameters**.

* Cost: GMACs = 10^9 multiply-adds of one inference pass (eval mode, deployed, batch 1), which is the number
  mmseg / fvcore / mmcv print as "GFLOPs" and most segmentation papers report. Counted with
  ``torch.utils.flop_counter.FlopCounterMode`` (which counts 2 FLOPs per multiply-add of matmuls, convolutions
  and attention; we halve it). Element-wise ops, norms, pooling and resizing are not counted.
* Parameters: those of the deployed model (``Segmentor.deploy()``: training-only heads removed), named
  "params (M, deployed)"; the training-only heads are listed apart.

The model is built on the ``meta`` device (no memory, no weights), so even ViT-L is quick.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.flop_counter import FlopCounterMode

from repsep.errors import UserError
from repsep.models.config import ModelConfig
from repsep.models.segmentor import build_model

PARAMS_HEADER = "params (M, deployed)"
COST_HEADER = "GMACs"


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
    """Deployed parameters and inference GMACs of ``cfg`` at ``image_size`` (H, W).

    Returns a dict: ``params`` {backbone, extra, inference, training_only, total, trainable} (counts; ``inference``
    = the deployed model = backbone + extra, ``extra`` = the deployed decoder, ``total`` = with the training-only
    heads), ``gmacs`` {backbone, extra, total} (10^9 multiply-adds), ``modules`` (one row per top-level module:
    name, params, gmacs (None for training-only modules), in_inference), ``image_size``, ``config``,
    ``convention`` (the headers' meaning).
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
    macs = {k.removeprefix(root): sum(v.values()) / 2 for k, v in counter.get_flop_counts().items()}
    for row in modules:
        row["gmacs"] = macs.get(row["name"], 0) / 1e9 if row["in_inference"] else None
    backbone = _count(model.backbone)
    inference = _count(model)
    gmacs = {"total": counter.get_total_flops() / 2 / 1e9, "backbone": macs.get("backbone", 0) / 1e9}
    gmacs["extra"] = gmacs["total"] - gmacs["backbone"]
    return {
        "model": cfg.name,
        "image_size": list(image_size),
        "params": {"backbone": backbone, "extra": inference - backbone, "inference": inference,
                   "training_only": total - inference, "total": total, "trainable": trainable},
        "gmacs": gmacs,
        "modules": modules,
        "convention": {"params": "deployed model (training-only heads removed)",
                       "gmacs": "10^9 multiply-adds, inference, batch 1 (what mmseg/fvcore call GFLOPs)"},
        "config": dataclasses.asdict(cfg),
    }


def training_gmacs(cfg: ModelConfig, image_size: tuple[int, int]) -> float:
    """GMACs of one training-mode forward pass of one image at ``image_size`` (H, W): the deployed model plus the
    training-only heads (auxiliary losses' heads), counted as :func:`model_info` counts (meta device)."""
    with torch.device("meta"):
        model = build_model(cfg)
    model.train()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():  # a batch of 2: batch norm in training mode needs more than one value
        model(torch.empty(2, 3, *image_size, device="meta"))
    return counter.get_total_flops() / 2 / 2 / 1e9


def format_info(info: dict) -> str:
    """A plain-text report of :func:`model_info` for people (GMACs, deployed params)."""
    p, m = info["params"], info["gmacs"]
    h, w = info["image_size"]
    lines = [
        f"model {info['model']} (size {info['config']['size']}, backbone {info['config']['backbone']})",
        "",
        f"{'':<22}{PARAMS_HEADER:>22}{COST_HEADER:>10}",
        f"{'backbone':<22}{p['backbone'] / 1e6:>22.2f}{m['backbone']:>10.2f}",
        f"{'extra (decoder)':<22}{p['extra'] / 1e6:>22.2f}{m['extra']:>10.2f}",
        f"{'total (deployed)':<22}{p['inference'] / 1e6:>22.2f}{m['total']:>10.2f}",
        f"{'training only (aux)':<22}{p['training_only'] / 1e6:>22.2f}{'-':>10}  (not deployed, not counted above)",
        "",
        f"GMACs: 10^9 multiply-adds of one inference pass at {h}x{w}, batch 1, deployed (what mmseg/fvcore print "
        "as \"GFLOPs\"); params (M, deployed): 10^6 parameters of the deployed model.",
        "",
        f"{'module':<20}{'params (M)':>12}{COST_HEADER:>10}  used in",
    ]
    for row in info["modules"]:
        used = "training + inference" if row["in_inference"] else "training only (aux, removed by deploy)"
        gm = f"{row['gmacs']:>10.3f}" if row["gmacs"] is not None else f"{'-':>10}"
        lines.append(f"{row['name']:<20}{row['params'] / 1e6:>12.3f}{gm}  {used}")
    return "\n".join(lines)
