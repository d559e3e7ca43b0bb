"""Checkpoint files: the resumable training state and the deployed model export.

Both are written atomically and hold tensors and plain Python values only, so they load with
``torch.load(weights_only=True)`` (no code runs when a checkpoint is opened).

* ``checkpoint_last.pt`` (:func:`save_state` / :func:`load_state`): ``{"format": STATE_FORMAT, "iter", model,
  optimizer, scheduler, scaler, rng, ...}``.
* ``model_final.pt`` (:func:`export_model` / :func:`load_model`): ``{"format": MODEL_FORMAT, "model_name",
  "model_config", "class_table", "dataset_spec", "train_config", "state_dict", "weights_sha256",
  "metadata_sha256"}``. ``weights_sha256`` covers every weight's name, dtype, shape and bytes (it identifies the
  model); ``metadata_sha256`` covers every other field and the weights' digest. Both are checked on load, and
  every field is validated (types, ranges, class table vs head), so an edited export is one error line.

Loading validates field by field (:func:`check_train_state`, :func:`load_model`); a non-finite weight is never
written (:func:`require_finite`); a failed write (disk full, ``torch.save``'s "unexpected pos") is one error line
naming the file, and the previous file stays as it was (:func:`writing`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from repsep.errors import UserError
from repsep.io import atomic_save, json_safe

STATE_FORMAT = "repsep-bench/train-state-v1"
MODEL_FORMAT = "repsep-bench/model-v2"
LEGACY_MODEL_FORMATS = ("repsep-bench/model-v1",)  # weights digest only; fields still validated
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def refused_pickle(path: Path) -> UserError:
    """The one-line error for a file that needs more than the weights-only unpickler (torch's advice omitted)."""
    return UserError(f"{path}: refused, the file contains Python objects/code beyond tensors and plain values "
                     "(not a repsep-bench checkpoint); it was not loaded")


def is_refused_pickle(e: BaseException) -> bool:
    """Whether ``e`` is torch's weights-only refusal (a global outside the allow-list)."""
    text = str(e)
    return isinstance(e, pickle.UnpicklingError) and ("weights_only" in text or "Unsupported global" in text)


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failed write of ``path`` (OSError such as ENOSPC, or torch's ``RuntimeError ... unexpected pos``
    from its zip writer) into one UserError line naming the file; the atomic writers leave the old file as is."""
    try:
        yield
    except UserError:
        raise
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e}); the previous file, if any, is unchanged"
                        ) from None
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
        if "unexpected pos" in str(e) or "PytorchStreamWriter" in str(e) or "write" in str(e).lower():
            raise UserError(f"{path}: cannot write (torch: {first}; is the disk full?); the previous file, if "
                            "any, is unchanged") from None
        raise


def require_finite(tensors: dict[str, Any], path: str | Path) -> None:
    """UserError when a floating-point tensor of ``tensors`` (a state_dict) holds NaN/inf: never written."""
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise UserError(f"{path}: not written, weight {name} is not finite (training diverged); lower optim.lr "
                            "or enable optim.clip_grad")


def _save_file(path: Path, writer: Callable[[IO[bytes]], None], folder: Any = None) -> None:
    """Atomic write, through the OwnedFolder ``folder`` (``path`` relative to it) when given."""
    target = path if folder is None else folder.path / path
    with writing(target):
        if folder is None:
            atomic_save(path, writer)
        else:
            folder.save(path, writer)


def _torch_load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a one-line UserError naming ``path``."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if is_refused_pickle(e):
            raise refused_pickle(path) from None
        raise UserError(f"{path}: not a torch checkpoint ({(str(e).splitlines() or [''])[0][:200]})") from None
    except Exception as e:  # the weights-only unpickler raises KeyError/RuntimeError/EOFError/... on garbage
        msg = str(e).splitlines()[0][:200] if str(e).strip() else type(e).__name__
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


def save_state(path: str | Path, state: dict[str, Any], folder: Any = None) -> None:
    """Atomically write a training state (tensors, numbers, strings, lists and dicts of them); with an
    :class:`~repsep.ownership.OwnedFolder` ``folder``, ``path`` is relative to it and the file is recorded.
    Refused (UserError) when ``state["model"]`` holds a non-finite weight or a failed write."""
    path = Path(path)
    require_finite(state.get("model") or {}, path if folder is None else folder.path / path)
    _save_file(path, lambda f: torch.save({"format": STATE_FORMAT, **state}, f), folder)


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training state file (format checked; see :func:`check_train_state` for its fields)."""
    path = Path(path)
    return _expect_format(_torch_load(path, map_location), path, STATE_FORMAT, "repsep-bench training state")


def _field_error(path: Path, key: str, problem: str) -> UserError:
    return UserError(f"{path}: field {key!r} {problem} (the file was edited or is damaged)")


def _is_tensor_dict(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items())


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_train_state(state: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Validate the fields of a ``checkpoint_last.pt`` that training writes; UserError naming file and field.

    Required: ``iter`` (int >= 1), ``config`` (a recipe that parses), ``model`` (name -> finite tensor),
    ``optimizer`` ({state, param_groups}), ``scheduler``/``scaler`` (dicts), ``rng`` (non-empty list of RNG states),
    ``data`` ({seed, world_size >= 1, batch_size >= 1, accum_steps >= 1, samples_seen}, ints).
    """
    from repsep.config import config_from_dict

    path = Path(path)
    for key in ("iter", "config", "model", "optimizer", "scheduler", "scaler", "rng", "data"):
        if key not in state:
            raise _field_error(path, key, "is missing")
    if not _is_int(state["iter"]) or state["iter"] < 1:
        raise _field_error(path, "iter", f"must be an integer >= 1, got {state['iter']!r}")
    if not isinstance(state["config"], dict):
        raise _field_error(path, "config", "must be a mapping")
    cfg = config_from_dict(state["config"], f"{path} [config]")
    if state["iter"] > cfg.schedule.iters:
        raise _field_error(path, "iter", f"is {state['iter']}, beyond config schedule.iters {cfg.schedule.iters}")
    if not _is_tensor_dict(state["model"]) or not state["model"]:
        raise _field_error(path, "model", "must map parameter names to tensors")
    require_finite(state["model"], path)
    opt = state["optimizer"]
    if not (isinstance(opt, dict) and isinstance(opt.get("state"), dict) and isinstance(opt.get("param_groups"), list)
            and all(isinstance(g, dict) for g in opt["param_groups"])):
        raise _field_error(path, "optimizer", "must be an optimizer state_dict {state, param_groups}")
    for key in ("scheduler", "scaler"):
        if not isinstance(state[key], dict):
            raise _field_error(path, key, "must be a mapping")
    rng = state["rng"]
    if not (isinstance(rng, list) and rng and all(isinstance(r, dict) and {"torch", "numpy", "python"} <= set(r)
                                                  and isinstance(r["torch"], torch.Tensor) for r in rng)):
        raise _field_error(path, "rng", "must be a non-empty list of RNG states {torch, numpy, python, cuda}")
    data = state["data"]
    if not isinstance(data, dict):
        raise _field_error(path, "data", "must be a mapping")
    for key, low in (("seed", None), ("world_size", 1), ("batch_size", 1), ("accum_steps", 1), ("samples_seen", 0)):
        v = data.get(key)
        if not _is_int(v) or (low is not None and v < low):
            raise _field_error(path, f"data.{key}", f"must be an integer{f' >= {low}' if low is not None else ''}, "
                               f"got {v!r}")
    if len(rng) != data["world_size"]:
        raise _field_error(path, "rng", f"holds {len(rng)} RNG states for data.world_size {data['world_size']}")
    return state


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
    source: dict[str, Any] | None = None
    """Where an imported model came from (``models import``: file, sha256, normalisation, unused keys), else None."""


METADATA_FIELDS = ("format", "model_name", "model_config", "class_table", "dataset_spec", "train_config",
                   "source", "weights_sha256")


def metadata_sha256(obj: dict[str, Any]) -> str:
    """sha256 of the export's non-weight fields (:data:`METADATA_FIELDS`, which include the weights' digest) as
    canonical JSON (sorted keys, tuples as lists)."""
    meta = {k: obj.get(k) for k in METADATA_FIELDS}
    return hashlib.sha256(json.dumps(json_safe(meta), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def export_model(path: str | Path, model: nn.Module, model_config: Any, class_table: Any, dataset_spec: str,
                 train_config: dict[str, Any], folder: Any = None, source: dict[str, Any] | None = None) -> str:
    """Write the deployed export of ``model`` (auxiliary heads dropped on a copy); returns the weights' sha256.

    ``model_config`` is the ModelConfig dataclass, ``class_table`` the ClassTable, ``train_config`` a plain dict.
    With an :class:`~repsep.ownership.OwnedFolder` ``folder``, ``path`` is relative to it and recorded there.
    ``source`` records where an imported model came from (plain types; covered by the metadata digest).
    Refused (UserError) for a non-finite weight or a failed write.
    """
    import copy

    path = Path(path)
    deployed = copy.deepcopy(model).deploy() if hasattr(model, "deploy") else model
    state_dict = {k: v.detach().cpu().clone() for k, v in deployed.state_dict().items()}
    require_finite(state_dict, path if folder is None else folder.path / path)
    sha = weights_sha256(state_dict)
    obj = {"format": MODEL_FORMAT, "model_name": model_config.name, "model_config": dataclasses.asdict(model_config),
           "class_table": class_table.to_dict(), "dataset_spec": dataset_spec, "train_config": train_config,
           "source": source, "state_dict": state_dict, "weights_sha256": sha}
    obj["metadata_sha256"] = metadata_sha256(obj)
    _save_file(path, lambda f: torch.save(obj, f), folder)
    return sha


def _check_class_table(d: Any, path: Path) -> None:
    if not isinstance(d, dict):
        raise _field_error(path, "class_table", "must be a mapping")
    classes, palette, ignore = d.get("classes"), d.get("palette"), d.get("ignore_index", 255)
    if not isinstance(d.get("name"), str):
        raise _field_error(path, "class_table.name", "must be a string")
    if not (isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) for c in classes)):
        raise _field_error(path, "class_table.classes", "must be a non-empty list of names")
    if not (isinstance(palette, (list, tuple)) and len(palette) == len(classes) and all(
            isinstance(c, (list, tuple)) and len(c) == 3 and all(_is_int(x) and 0 <= x <= 255 for x in c)
            for c in palette)):
        raise _field_error(path, "class_table.palette", f"must be {len(classes)} RGB triples of 0..255")
    if not _is_int(ignore) or not 0 <= ignore <= 255:
        raise _field_error(path, "class_table.ignore_index", f"must be an integer in 0..255, got {ignore!r}")


def _check_export_fields(obj: dict[str, Any], path: Path) -> None:
    """Types and digests of an export's fields (before anything is built from them)."""
    for key in ("model_name", "model_config", "class_table", "dataset_spec", "state_dict", "weights_sha256"):
        if key not in obj:
            raise _field_error(path, key, "is missing")
    state_dict = obj["state_dict"]
    if not _is_tensor_dict(state_dict) or not state_dict:
        raise _field_error(path, "state_dict", "must map parameter names to tensors")
    if not isinstance(obj["weights_sha256"], str) or weights_sha256(state_dict) != obj["weights_sha256"]:
        raise UserError(f"{path}: the weights do not match their recorded sha256 (the file was modified)")
    if obj["format"] == MODEL_FORMAT:
        digest = obj.get("metadata_sha256")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise _field_error(path, "metadata_sha256", "is missing or not a sha256")
        if metadata_sha256(obj) != digest:
            changed = "the non-weight fields (" + ", ".join(METADATA_FIELDS[1:-1]) + ")"
            raise UserError(f"{path}: {changed} do not match their recorded sha256 (the file was modified)")
    for key in ("model_name", "dataset_spec"):
        if not isinstance(obj[key], str) or not obj[key]:
            raise _field_error(path, key, "must be a non-empty string")
    if not isinstance(obj["model_config"], dict):
        raise _field_error(path, "model_config", "must be a mapping")
    if obj["model_config"].get("name") != obj["model_name"]:
        raise _field_error(path, "model_name", f"{obj['model_name']!r} differs from model_config.name "
                           f"{obj['model_config'].get('name')!r}")
    _check_class_table(obj["class_table"], path)
    train_config = obj.get("train_config")
    if train_config is not None and not isinstance(train_config, dict):
        raise _field_error(path, "train_config", "must be a mapping")
    if obj.get("source") is not None and not isinstance(obj["source"], dict):
        raise _field_error(path, "source", "must be a mapping")
    require_finite(state_dict, path)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the deployed model from a ``model_final.pt`` export (weights verified by their sha256)."""
    from repsep.data.labels import ClassTable
    from repsep.models import ModelConfig, build_model

    path = Path(path)
    obj = _torch_load(path, map_location)
    if not (isinstance(obj, dict) and obj.get("format") in LEGACY_MODEL_FORMATS):
        obj = _expect_format(obj, path, MODEL_FORMAT, "repsep-bench model export")
    _check_export_fields(obj, path)
    if (obj.get("source") or {}).get("format") == "hf-transformers":  # `models import hf`: a transformers model
        from repsep.models.importers.hf_load import load_hf_export

        return LoadedModel(path=path, **load_hf_export(obj, path, map_location))
    state_dict = obj["state_dict"]
    try:
        cfg = ModelConfig(**_tuples(obj["model_config"]))
        table = ClassTable.from_dict(obj["class_table"])
    except UserError as e:
        raise UserError(f"{path}: field 'model_config': {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: malformed model export ({(str(e).splitlines() or [''])[0][:200]})") from None
    if cfg.num_classes != table.num_classes:
        raise UserError(f"{path}: model has {cfg.num_classes} classes but its class table "
                        f"{table.name!r} has {table.num_classes}")
    head = state_dict.get("head.cls.weight")
    if head is not None and head.shape[0] != table.num_classes:
        raise UserError(f"{path}: field 'class_table' has {table.num_classes} classes but the head "
                        f"(head.cls.weight) predicts {head.shape[0]}")
    if obj.get("train_config"):
        from repsep.config import config_from_dict

        config_from_dict(obj["train_config"], f"{path} [train_config]")
    model = build_model(cfg).deploy()
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit model {cfg.name!r} ({_first_mismatch(str(e))})") from None
    return LoadedModel(model=model.eval().to(map_location), model_config=cfg, class_table=table,
                       dataset_spec=str(obj["dataset_spec"]), train_config=dict(obj.get("train_config") or {}),
                       path=path, source=obj.get("source"))


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """Lists back to tuples (a ModelConfig holds tuples; ``asdict`` keeps them, YAML/JSON turn them into lists)."""
    return {k: tuple(_tuples_any(x) for x in v) if isinstance(v, list) else v for k, v in d.items()}


def _tuples_any(v: Any) -> Any:
    return tuple(_tuples_any(x) for x in v) if isinstance(v, list) else v


def _first_mismatch(msg: str) -> str:
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    return "; ".join(lines[1:3])[:300] if len(lines) > 1 else msg[:300]
