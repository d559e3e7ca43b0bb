"""AdamW with layer-wise lr decay and a head lr multiplier, and the poly schedule with linear warm-up.

Layer-wise decay follows BEiT / mmseg ``LayerDecayOptimizerConstructor``: with ``L = model.num_layers``
transformer blocks, a parameter of layer ``i = model.layer_id(name)`` (0 = embeddings, 1..L blocks,
L + 1 = everything after the backbone) gets ``lr * layer_decay ** (L + 1 - i)``; layer L + 1 (the decode
head) is further multiplied by ``head_lr_mult``. Norms, biases (1-d parameters) and the names in
``model.no_weight_decay()`` (position embeddings, class tokens) get no weight decay.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler


def param_groups(model: nn.Module, lr: float, weight_decay: float, layer_decay: float = 1.0,
                 head_lr_mult: float = 1.0) -> list[dict]:
    """AdamW parameter groups, one per (layer, decay / no-decay), ordered by layer then name.

    ``model`` provides ``num_layers``, ``layer_id(name)`` and ``no_weight_decay()`` (the Segmentor contract).
    Each group carries ``lr`` (its peak lr), ``weight_decay`` and ``lr_scale`` (its lr / the base ``lr``).
    """
    head = model.num_layers + 1
    skip = set(model.no_weight_decay())
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        layer = model.layer_id(name)
        if not 0 <= layer <= head:
            raise ValueError(f"layer_id({name!r}) = {layer} is outside 0..{head}")
        decay = p.ndim > 1 and name not in skip and not any(name.endswith("." + s) for s in skip)
        scale = layer_decay ** (head - layer) * (head_lr_mult if layer == head else 1.0)
        group = groups.setdefault((layer, decay), {
            "params": [], "names": [], "lr_scale": scale, "lr": lr * scale,
            "weight_decay": weight_decay if decay else 0.0,
        })
        group["params"].append(p)
        group["names"].append(name)
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], not k[1]))]


def build_adamw(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
                layer_decay: float = 1.0, head_lr_mult: float = 1.0) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` of ``model`` (the unwrapped Segmentor, not a DDP wrapper)."""
    groups = param_groups(model, lr, weight_decay, layer_decay, head_lr_mult)
    for g in groups:
        del g["names"]  # keep the optimizer state dict to tensors and numbers
    return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay)


def poly_warmup_factor(it: int, iters: int, power: float = 1.0, warmup_iters: int = 0,
                       warmup_ratio: float = 1e-6) -> float:
    """The lr multiplier at iteration ``it`` (0-based): mmseg ``poly`` with ``min_lr = 0`` and linear warm-up.

    ``(1 - it / iters) ** power``, times ``1 - (1 - it / warmup_iters) * (1 - warmup_ratio)`` while
    ``it < warmup_iters`` (so iteration 0 runs at ``warmup_ratio`` of the poly value).
    """
    factor = (1.0 - min(it, iters) / iters) ** power
    if it < warmup_iters:
        factor *= 1.0 - (1.0 - it / warmup_iters) * (1.0 - warmup_ratio)
    return factor


class PolyWarmupLR(LRScheduler):
    """Per-iteration poly schedule with linear warm-up; every group's lr = its peak lr x the factor.

    Call ``step()`` after each optimizer step. The state dict holds numbers only.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, iters: int, power: float = 1.0, warmup_iters: int = 0,
                 warmup_ratio: float = 1e-6, last_epoch: int = -1):
        if iters <= 0:
            raise ValueError(f"iters must be positive, got {iters}")
        self.iters, self.power, self.warmup_iters, self.warmup_ratio = iters, power, warmup_iters, warmup_ratio
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        f = poly_warmup_factor(self.last_epoch, self.iters, self.power, self.warmup_iters, self.warmup_ratio)
        return [base * f for base in self.base_lrs]
