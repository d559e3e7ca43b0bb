"""Loading side of ``models import hf`` exports (kept apart from :mod:`.hf` so that
:mod:`repsep.engine.checkpoint` can call it without an import circle): :class:`HFModelConfig`,
:func:`load_hf_export`, :func:`hf_model_info`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from repsep.errors import UserError
from repsep.models.importers.hf_adapter import SUPPORTED

HF_FORMAT = "hf-transformers"
"""``source["format"]`` of an imported transformers model's export."""


@dataclass(frozen=True)
class HFModelConfig:
    """What the commands read of an imported model's config (``LoadedModel.model_config``); plain fields."""

    name: str
    architecture: str
    backbone: str
    num_classes: int
    img_size: tuple[int, int] | None = None
    pathway: bool = False
    sasm: bool = False
    dca: bool = False


def load_hf_export(obj: dict[str, Any], path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The :class:`~repsep.engine.checkpoint.LoadedModel` fields (all but ``path``) of a checked export whose
    source is ``hf-transformers``."""
    from repsep.config import DataConfig, EvalConfig
    from repsep.data.labels import ClassTable
    from repsep.models.importers.hf_adapter import HFSegmentor, build_hf_model
    from repsep.typed_dict import from_dict

    src = obj["source"]
    arch, config = src.get("architecture"), src.get("config")
    if arch not in SUPPORTED:
        raise UserError(f"{path}: field 'source.architecture' {arch!r} is not a supported transformers class")
    if not isinstance(config, dict):
        raise UserError(f"{path}: field 'source.config' must be the model's config.json mapping")
    for key in ("mean", "std"):
        v = src.get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, int | float) for x in v)):
            raise UserError(f"{path}: field 'source.{key}' must be 3 numbers")
    if any(s <= 0 for s in src["std"]):
        raise UserError(f"{path}: field 'source.std' must be positive")
    try:
        mc = dict(obj["model_config"])
        if isinstance(mc.get("img_size"), list):
            mc["img_size"] = tuple(mc["img_size"])
        cfg = HFModelConfig(**mc)
        table = ClassTable.from_dict(obj["class_table"])
    except (KeyError, TypeError, ValueError, UserError) as e:
        raise UserError(f"{path}: malformed model export ({(str(e).splitlines() or [''])[0][:200]})") from None
    train_config = dict(obj.get("train_config") or {})
    for key, cls in (("data", DataConfig), ("eval", EvalConfig)):
        if key in train_config:
            from_dict(cls, train_config[key], f"{path} [train_config]", prefix=f"{key}.")
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise UserError(f"{path}: a HuggingFace model needs the transformers package (pip install "
                        "'repsep-bench[hf]')") from None
    try:
        hf_model = build_hf_model(arch, config)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise UserError(f"{path}: field 'source.config' does not build {arch} ({str(e).splitlines()[0][:200]})"
                        ) from None
    if int(hf_model.config.num_labels) != table.num_classes:
        raise UserError(f"{path}: the model predicts {hf_model.config.num_labels} classes but its class table "
                        f"{table.name!r} has {table.num_classes}")
    try:
        hf_model.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise UserError(f"{path}: weights do not fit {arch} ({'; '.join(lines[1:3])[:300]})") from None
    tokens = src.get("task_inputs")
    task = torch.tensor(tokens, dtype=torch.float32) if isinstance(tokens, list) and tokens else None
    model = HFSegmentor(hf_model, arch, tuple(src["mean"]), tuple(src["std"]), task_inputs=task)
    return {"model": model.eval().to(map_location), "model_config": cfg, "class_table": table,
            "dataset_spec": str(obj["dataset_spec"]), "train_config": train_config, "source": src}


def hf_model_info(model: torch.nn.Module, image_size: tuple[int, int]) -> dict[str, Any]:
    """Parameters (the deployed transformers model) and inference GMACs at ``image_size`` (batch 1), the
    project's convention (:func:`repsep.models.profile.model_info`'s ``params.inference`` / ``gmacs.total``)."""
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    device = next(model.parameters()).device
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, *image_size, device=device))
    return {"params": {"inference": params}, "gmacs": {"total": counter.get_total_flops() / 2 / 1e9},
            "image_size": list(image_size)}
