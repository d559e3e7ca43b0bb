"""Inference precision of ``eval`` / ``corrupt`` / ``analyze``: ``fp32``, ``bf16`` or ``fp16``.

Only the model's forward pass runs under :func:`torch.autocast` (weights stay fp32; matmuls and convolutions run
in the low precision); its outputs are cast back to fp32 before anything else sees them, so sliding-window sums,
test-time-augmentation averages, the argmax and every metric are computed on fp32 logits. The precision is
recorded as ``"precision"`` in every result's ``settings`` block (a result made before the field existed reads as
``fp32``, :data:`repsep.comparability.DEFAULTS`) and is part of each corrupt cell's cache key.

Default (:func:`resolve_precision`): ``bf16`` on a CUDA device that supports it, else ``fp32``. ``fp16`` runs on
the CPU too where torch's CPU autocast supports it (torch >= 2.4 does); torch refusing it is one error line.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from repsep.errors import UserError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def default_precision(device: torch.device | str) -> str:
    """``bf16`` on a CUDA device with bf16 support, else ``fp32``."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def check_precision(precision: str | None, option: str = "--precision") -> None:
    """UserError naming ``option`` unless ``precision`` is None or one of :data:`PRECISIONS` (no torch check)."""
    if precision is not None and precision not in PRECISIONS:
        raise UserError(f"{option} {precision}: choose one of {', '.join(PRECISIONS)}")


def resolve_precision(precision: str | None, device: torch.device | str, option: str = "--precision") -> str:
    """``precision`` checked (None: :func:`default_precision` of ``device``); UserError naming ``option`` when it is
    not one of :data:`PRECISIONS` or torch has no autocast of that dtype on ``device``'s type."""
    device = torch.device(device)
    check_precision(precision, option)
    if precision is None:
        return default_precision(device)
    if precision != "fp32":
        try:
            with torch.autocast(device.type, dtype=DTYPES[precision]):
                pass
        except (RuntimeError, ValueError, AssertionError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"{option} {precision}: not supported on {device.type} by this torch "
                            f"({first}); use fp32" + (" or bf16" if precision == "fp16" else "")) from None
    return precision


def autocast(precision: str, device_type: str) -> AbstractContextManager[Any]:
    """The autocast context of ``precision`` on ``device_type`` (``cpu``, ``cuda``); fp32: a no-op."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type, dtype=DTYPES[precision])


def _to_fp32(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, Mapping):
        return {k: _to_fp32(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_fp32(v) for v in value)
    return value


class AutocastModel:
    """``model`` whose ``__call__`` and ``forward_features`` run under :func:`autocast` and return fp32 tensors
    (dicts / lists of them too). Any other attribute is the model's."""

    def __init__(self, model: torch.nn.Module, precision: str, device_type: str) -> None:
        self.model, self.precision, self.device_type = model, precision, device_type

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with autocast(self.precision, self.device_type):
            out = self.model(*args, **kwargs)
        return _to_fp32(out)

    def forward_features(self, *args: Any, **kwargs: Any) -> Any:
        with autocast(self.precision, self.device_type):
            out = self.model.forward_features(*args, **kwargs)
        return _to_fp32(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def with_precision(model: Any, precision: str, device_type: str) -> Any:
    """``model`` itself for fp32, else an :class:`AutocastModel` of it."""
    if precision == "fp32" or isinstance(model, AutocastModel):
        return model
    return AutocastModel(model, precision, device_type)
