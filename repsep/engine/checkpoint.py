"""Checkpoint files: the resumable training state and the deployed model export.

Both are written atomically and hold tensors and plain Python values only, so they load with
``torch.load(weights_only=True)`` (no code runs when a checkpoint is opened).

* ``checkpoint_last.pt`` (:func:`save_state` / :func:`load_state`): ``{"format": STATE_FORMAT, "iter", model,
  optimizer, scheduler, scaler, rng, ...}``.
* ``model_final.pt`` (:func:`export_model` / :func:`load_model`): ``{"format": MODEL_FORMAT, "model_name",
  "model_config", "class_table", "dataset_spec", "train_config", "state_dict", "weights_sha256"}``; the
  sha256 covers every weight's name, dtype, shape and bytes and is checked on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from repsep.errors import UserError
from repsep.io import atomic_save

STATE_FORMAT = "repsep-bench/train-state-v1"
MODEL_FORMAT = "repsep-bench/model-v1"


def _torch_load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a one-line UserError naming ``path``."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise UserError(f"{path}: refused, the file contains Python objects/code beyond tensors and plain "
                            "values (not a repsep-bench checkpoint)") from None
        raise UserError(f"{path}: not a torch checkpoint ({str(e).splitlines()[0]})") from None
    except Exception as e:  # the weights-only unpickler raises KeyError/RuntimeError/EOFError/... on garbage
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: unreadable or truncated checkpoint ({msg})") from None


def _expect_format(obj: Any, path: Path, fmt: str, what: str) -> dict:
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        hint = " (a bare state_dict?)" if isinstance(obj, dict) and "format" not in obj else ""
        raise UserError(f"{path}: not a {what} (format {found!r}{hint}, expected {fmt!r})")
    return obj


# ---- training state -------------------------------------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and Python RNG states as tensors and plain values."""
    np_state = np.random.get_state(legacy=False)
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"], "has_gauss": n["has_gauss"], "gauss": n["gauss"],
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]}})
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write a training state (tensors, numbers, strings, lists and dicts of them)."""
    atomic_save(path, lambda f: torch.save({"format": STATE_FORMAT, **state}, f))


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    return _expect_format(_torch_load(path, map_location), path, STATE_FORMAT, "repsep-bench training state")


# ---- deployed model -------------------------------------------------------------------------------------------

def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@dataclass
class LoadedModel:
    """A deployed model (eval mode, no auxiliary heads) and what is needed to evaluate it."""

    model: nn.Module
    model_config: Any  # repsep.models.ModelConfig
    class_table: Any  # repsep.data.labels.ClassTable
    dataset_spec: str
    train_config: dict[str, Any]
    path: Path


def export_model(path: str | Path, model: nn.Module, model_config: Any, class_table: Any, dataset_spec: str,
                 train_config: dict[str, Any]) -> str:
    """Write the deployed export of ``model`` (auxiliary heads dropped on a copy); returns the weights' sha256.

    ``model_config`` is the ModelConfig dataclass, ``class_table`` the ClassTable, ``train_config`` a plain dict.
    """
    import copy

    deployed = copy.deepcopy(model).deploy() if hasattr(model, "deploy") else model
    state_dict = {k: v.detach().cpu().clone() for k, v in deployed.state_dict().items()}
    sha = weights_sha256(state_dict)
    obj = {"format": MODEL_FORMAT, "model_name": model_config.name, "model_config": dataclasses.asdict(model_config),
           "class_table": class_table.to_dict(), "dataset_spec": dataset_spec, "train_config": train_config,
           "state_dict": state_dict, "weights_sha256": sha}
    atomic_save(path, lambda f: torch.save(obj, f))
    return sha


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the deployed model from a ``model_final.pt`` export (weights verified by their sha256)."""
    from repsep.data.labels import ClassTable
    from repsep.models import ModelConfig, build_model

    path = Path(path)
    obj = _expect_format(_torch_load(path, map_location), path, MODEL_FORMAT, "repsep-bench model export")
    state_dict = obj.get("state_dict")
    if not isinstance(state_dict, dict) or weights_sha256(state_dict) != obj.get("weights_sha256"):
        raise UserError(f"{path}: the weights do not match their recorded sha256 (the file was modified)")
    try:
        cfg = ModelConfig(**_tuples(obj["model_config"]))
        table = ClassTable.from_dict(obj["class_table"])
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: malformed model export ({e})") from None
    if cfg.num_classes != table.num_classes:
        raise UserError(f"{path}: model has {cfg.num_classes} classes but its class table "
                        f"{table.name!r} has {table.num_classes}")
    model = build_model(cfg).deploy()
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit model {cfg.name!r} ({_first_mismatch(str(e))})") from None
    return LoadedModel(model=model.eval().to(map_location), model_config=cfg, class_table=table,
                       dataset_spec=str(obj["dataset_spec"]), train_config=dict(obj.get("train_config") or {}),
                       path=path)


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """Lists back to tuples (a ModelConfig holds tuples; ``asdict`` keeps them, YAML/JSON turn them into lists)."""
    return {k: tuple(_tuples_any(x) for x in v) if isinstance(v, list) else v for k, v in d.items()}


def _tuples_any(v: Any) -> Any:
    return tuple(_tuples_any(x) for x in v) if isinstance(v, list) else v


def _first_mismatch(msg: str) -> str:
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    return "; ".join(lines[1:3])[:300] if len(lines) > 1 else msg[:300]
