"""An in-memory ``torch.nn.Module`` made ready for the sweep: its output checked and resized, its class table and
normalisation, and its identity (:func:`module_sha256`, the ``model_sha256`` of its results)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from repsep.data.labels import ClassTable
from repsep.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from repsep.errors import UserError

IDENTITY_FORMAT = "repsep-bench/module-v1"


def module_sha256(module: nn.Module, mean: Sequence[float], std: Sequence[float], classes: Sequence[str]) -> str:
    """The identity of an in-memory model: sha256 over ``IDENTITY_FORMAT``, the module's class (``module.qualname``),
    :func:`repsep.engine.checkpoint.weights_sha256` of its ``state_dict`` (every tensor's name, dtype, shape and
    bytes, in sorted name order) and the canonical JSON of its normalisation and class names.

    Deterministic (the same weights give the same digest on any device or run); the forward *code* is not hashed,
    so a changed ``forward`` with the same weights needs another ``out`` (or ``overwrite``) to be recomputed.
    """
    from repsep.engine.checkpoint import weights_sha256

    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    meta = json.dumps({"mean": [float(v) for v in mean], "std": [float(v) for v in std], "classes": list(classes),
                       "class": kind}, sort_keys=True, separators=(",", ":"))
    h = hashlib.sha256(f"{IDENTITY_FORMAT}\n{weights_sha256(module.state_dict())}\n{meta}".encode())
    return h.hexdigest()


class CheckedLogits(nn.Module):
    """``module`` with its output checked (``[B, K, h, w]`` floating logits) and resized to the input size."""

    def __init__(self, module: nn.Module, num_classes: int, name: str) -> None:
        super().__init__()
        self.inner = module
        self.num_classes = num_classes
        self.name = name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.inner(images)
        if not isinstance(out, torch.Tensor) and isinstance(getattr(out, "logits", None), torch.Tensor):
            out = out.logits
        if not isinstance(out, torch.Tensor):
            raise UserError(f"model {self.name}: returned {type(out).__name__}, expected a logits tensor "
                            f"[B, {self.num_classes}, h, w]")
        b = images.shape[0]
        if out.dim() != 4 or out.shape[0] != b or out.shape[1] != self.num_classes or not out.is_floating_point():
            raise UserError(f"model {self.name}: returned {out.dtype} {list(out.shape)} for a batch "
                            f"{list(images.shape)}, expected float logits [{b}, {self.num_classes}, h, w]")
        if out.shape[-2:] != images.shape[-2:]:
            out = F.interpolate(out.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return out


@dataclass
class ModuleModel:
    """An in-memory model for :func:`corruptions.evaluate.run_sweep`: the checked module, its class table,
    normalisation (0-255 RGB), identity and label; ``train_config`` supplies inference defaults (none: whole)."""

    module: CheckedLogits
    class_table: ClassTable
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sha256: str
    name: str
    train_config: dict[str, Any] = field(default_factory=dict)

    def check_classes(self, table: ClassTable, spec: str) -> None:
        """UserError (one line) unless the model's class names are ``table``'s (the dataset's), in order."""
        mine = self.class_table.classes
        if len(mine) != table.num_classes:
            raise UserError(f"model {self.name}: {len(mine)} classes, but {spec} has {table.num_classes} "
                            f"({table.name})")
        for k, (a, b) in enumerate(zip(mine, table.classes, strict=True)):
            if a != b:
                raise UserError(f"model {self.name}: class {k} is {a!r} but {spec}'s class {k} is {b!r} (the "
                                "class table must be the dataset's, in train-id order)")

    def describe(self) -> dict[str, Any]:
        """Plain values for the manifest."""
        return {"name": self.name, "class": f"{type(self.module.inner).__module__}."
                f"{type(self.module.inner).__qualname__}", "mean": list(self.mean), "std": list(self.std),
                "classes": list(self.class_table.classes), "identity": IDENTITY_FORMAT}


def _triple(values: Sequence[float], what: str, name: str) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise UserError(f"model {name}: {what} must be 3 numbers (0-255 RGB), got {values!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) for v in out) or (what == "std" and min(out) <= 0):
        rule = ", each > 0" if what == "std" else ""
        raise UserError(f"model {name}: {what} must be 3 finite numbers (0-255 RGB){rule}, got {list(values)!r}")
    return out  # type: ignore[return-value]


def module_model(module: nn.Module, classes: ClassTable | Sequence[str], *, name: str,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 train_config: dict[str, Any] | None = None) -> ModuleModel:
    """Wrap ``module`` for the sweep; ``classes`` as a list of names gets the palette of the dataset's table when
    matched (:meth:`ModuleModel.check_classes`), so any palette will do here."""
    if not isinstance(module, nn.Module):
        raise UserError(f"model {name}: a torch.nn.Module is needed, got {type(module).__name__}")
    if not isinstance(name, str) or not name.strip() or "\n" in name:
        raise UserError(f"name {name!r}: must be a non-empty one-line label")
    if isinstance(classes, ClassTable):
        table = classes
    else:
        names = [classes] if isinstance(classes, str) else list(classes)
        if not names or not all(isinstance(c, str) for c in names):
            raise UserError(f"model {name}: classes must be a ClassTable or a non-empty list of class names")
        table = ClassTable(name=f"{name} classes", classes=tuple(names), palette=((0, 0, 0),) * len(names))
    m, s = _triple(mean, "mean", name), _triple(std, "std", name)
    module.eval()
    return ModuleModel(module=CheckedLogits(module, table.num_classes, name), class_table=table, mean=m, std=s,
                       sha256=module_sha256(module, m, s, table.classes), name=name,
                       train_config=dict(train_config or {}))
