"""Import a HuggingFace transformers segmentation folder (``save_pretrained`` output) as a project model export.

``import_hf(folder, out, dataset=, label_map=)`` reads ``config.json`` (the architecture: ``architectures[0]``),
the weights (``model.safetensors`` / ``pytorch_model.bin``, sharded or not, through transformers'
``from_pretrained`` with ``local_files_only``: no hub) and ``preprocessor_config.json`` (mean / std, resize),
checks ``id2label`` against the dataset's class table, and writes a ``repsep-bench/model-v2`` export whose
``source`` records the architecture, the config as a dict and the normalisation (0-255 RGB), and whose
``state_dict`` is the transformers model's own (auxiliary heads dropped: the deployed model).
:func:`load_hf_export` (called by :func:`repsep.engine.checkpoint.load_model`) rebuilds the model from that
config, loads the weights strictly and wraps it in :class:`~repsep.models.importers.hf_adapter.HFSegmentor`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from repsep.errors import UserError
from repsep.manifest import sha256_file
from repsep.models.importers.hf_adapter import QUERY, SUPPORTED
from repsep.models.importers.hf_load import HF_FORMAT, HFModelConfig
from repsep.typed_dict import plain

DATASETS = ("cityscapes", "ade20k", "synthcity")
_SPEC = {"cityscapes": "cityscapes:data/cityscapes", "ade20k": "ade20k:data/ade20k", "synthcity": "synthcity"}
_HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
DEFAULT_NORM = {"BeitForSemanticSegmentation": _HALF, "DPTForSemanticSegmentation": _HALF,
                "Data2VecVisionForSemanticSegmentation": _HALF}
"""The image processors' default mean/std (0-1) where the folder has no preprocessor_config.json; others: ImageNet."""
_AUX_PREFIXES = ("auxiliary_head.",)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not readable JSON ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def read_config(folder: Path) -> tuple[dict[str, Any], str]:
    """``(config.json as a dict, architecture class name)``; a missing file / unknown architecture: UserError."""
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder (give the directory save_pretrained wrote)")
    path = folder / "config.json"
    if not path.is_file():
        raise UserError(f"{path}: file not found (not a transformers save_pretrained folder)")
    config = _read_json(path)
    archs = config.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    if arch not in SUPPORTED:
        raise UserError(f"{path}: architecture {arch!r} is not supported; supported: {', '.join(SUPPORTED)}")
    return config, arch


def preprocessing(folder: Path, arch: str) -> dict[str, Any]:
    """Mean / std in 0-255 RGB and the resize of ``preprocessor_config.json`` (the processor's defaults when the
    file is absent): ``pixel = (x * rescale - mean) / std`` is ``(x - mean / rescale) / (std / rescale)``."""
    path = folder / "preprocessor_config.json"
    p = _read_json(path) if path.is_file() else {}
    mean, std = DEFAULT_NORM.get(arch, _IMAGENET)
    mean, std = p.get("image_mean", mean), p.get("image_std", std)
    if not p.get("do_normalize", True):
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    rescale = float(p.get("rescale_factor", 1 / 255)) if p.get("do_rescale", True) else 1.0
    ok = (isinstance(mean, list | tuple) and isinstance(std, list | tuple) and len(mean) == len(std) == 3
          and all(isinstance(v, int | float) for v in (*mean, *std)) and all(s > 0 for s in std) and rescale > 0)
    if not ok:
        raise UserError(f"{path}: image_mean / image_std must be 3 numbers each (std > 0), got {mean!r} / {std!r}")
    size = p.get("size") if p.get("do_resize", True) else None
    return {"file": path.name if path.is_file() else None, "mean": [float(m) / rescale for m in mean],
            "std": [float(s) / rescale for s in std], "resize": size, "processor": p.get("image_processor_type"),
            "reduce_labels": bool(p.get("do_reduce_labels", p.get("reduce_labels", False)))}


def _norm(name: str) -> str:
    return " ".join(str(name).replace("_", " ").lower().split())


def read_label_map(path: Path) -> dict[str, str]:
    """``{model label: dataset class}`` from a JSON or YAML file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"--map {path}: not readable JSON/YAML ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise UserError(f"--map {path}: expected a mapping of model label -> dataset class name (strings)")
    return data


def check_labels(config: dict[str, Any], table: Any, where: Path, label_map: dict[str, str] | None = None,
                 map_path: Path | None = None) -> list[str]:
    """The model's ``id2label`` in index order, checked against ``table`` (case and spaces/underscores ignored;
    ``label_map`` renames model labels first); the first difference is a UserError."""
    raw = config.get("id2label")
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{where}: no id2label (the class names the model predicts)")
    try:
        labels = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        raise UserError(f"{where}: id2label keys must be class indices") from None
    if sorted(labels) != list(range(len(labels))):
        raise UserError(f"{where}: id2label indices are not 0..{len(labels) - 1}")
    names = [labels[i] for i in range(len(labels))]
    if len(names) != table.num_classes:
        raise UserError(f"{where}: the model predicts {len(names)} classes (id2label) but {table.name} has "
                        f"{table.num_classes}; choose --dataset")
    mapping = {_norm(k): v for k, v in (label_map or {}).items()}
    unknown = [k for k in (label_map or {}) if _norm(k) not in {_norm(n) for n in names}]
    if unknown:
        raise UserError(f"--map {map_path}: {unknown[0]!r} is not a label of the model (id2label)")
    for i, (name, cls) in enumerate(zip(names, table.classes, strict=True)):
        if _norm(mapping.get(_norm(name), name)) != _norm(cls):
            via = f" (mapped to {mapping[_norm(name)]!r} by --map)" if _norm(name) in mapping else ""
            raise UserError(f"{where}: id2label {i} is {name!r}{via} but {table.name} class {i} is {cls!r}; give "
                            "--map FILE ({model label: dataset class}) if they are the same class")
    return names


def _table(dataset: str | None, num_labels: int):
    from repsep.data.labels import ADE20K, CITYSCAPES

    if dataset is None:
        dataset = {19: "cityscapes", 150: "ade20k"}.get(num_labels)
        if dataset is None:
            raise UserError(f"--dataset: the model predicts {num_labels} classes; choose one of "
                            f"{', '.join(DATASETS)}")
    if dataset not in DATASETS:
        raise UserError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    return (ADE20K if dataset == "ade20k" else CITYSCAPES), dataset


def _deployed_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config without training-only heads (``use_auxiliary_head`` off)."""
    return {**config, "use_auxiliary_head": False} if config.get("use_auxiliary_head") else dict(config)


def load_folder(folder: Path, arch: str, config: dict[str, Any]) -> tuple[torch.nn.Module, list[str]]:
    """The model with the folder's weights (fp32, eval) and the unused (auxiliary) keys; every weight the model
    needs must be in the files with its shape, else a UserError."""
    import transformers
    from transformers.utils import logging as hf_logging

    from repsep.models.importers.hf_adapter import hf_config

    names = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
    if not any((folder / n).is_file() for n in names):
        raise UserError(f"{folder}: no weights (expected {' or '.join(names[::2])})")
    cls = getattr(transformers, arch)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        cfg = hf_config(_deployed_config(config))
        model, info = cls.from_pretrained(folder, config=cfg, dtype=torch.float32, local_files_only=True,
                                          output_loading_info=True, ignore_mismatched_sizes=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"{folder}: the weights do not load into {arch} ({first})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(info.get("mismatched_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    if mismatched:
        k, got, want = mismatched[0][0], *mismatched[0][1:3]
        raise UserError(f"{folder}: weights do not match config.json: {k} has shape {tuple(got)}, the config "
                        f"needs {tuple(want)} ({len(mismatched)} mis-shaped in all)")
    if missing:
        raise UserError(f"{folder}: weights do not match config.json: missing {', '.join(missing[:3])}"
                        f"{' ...' if len(missing) > 3 else ''} ({len(missing)} in all)")
    foreign = [k for k in unexpected if not k.startswith(_AUX_PREFIXES)]
    if foreign:
        raise UserError(f"{folder}: weights do not match config.json: unexpected {', '.join(foreign[:3])}"
                        f"{' ...' if len(foreign) > 3 else ''} ({len(foreign)} in all)")
    return model.eval(), unexpected


def task_inputs(folder: Path, config: dict[str, Any]) -> list[int]:
    """OneFormer's task token ids for "the task is semantic", from the folder's own CLIP tokenizer files
    (``vocab.json`` + ``merges.txt``, as ``OneFormerProcessor.save_pretrained`` writes them; no download)."""
    if not ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
        raise UserError(f"{folder}: OneFormer needs its tokenizer files (vocab.json, merges.txt) for the task "
                        "token 'the task is semantic'; save the OneFormerProcessor into the folder too")
    from transformers import CLIPTokenizer

    length = int(config.get("task_seq_len", 77))
    try:
        tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
        enc = tok(["the task is semantic"], padding="max_length", max_length=length, truncation=True)
    except Exception as e:  # noqa: BLE001 - the tokenizers backend raises its own types on bad files
        raise UserError(f"{folder}: tokenizer files unreadable ({str(e).splitlines()[0][:120]})") from None
    # as OneFormerProcessor._preprocess_text: ids times the attention mask (padding -> 0)
    return [int(i) * int(m) for i, m in zip(enc["input_ids"][0], enc["attention_mask"][0], strict=True)]


def import_hf(folder: str | Path, out: str | Path, dataset: str | None = None, label_map: Path | None = None,
              data_spec: str | None = None) -> dict[str, Any]:
    """Convert ``folder`` into the export ``out``; returns the import record (the export's ``source`` plus
    ``weights_sha256`` and ``class_table``)."""
    from repsep.config import DataConfig, EvalConfig
    from repsep.engine.checkpoint import export_model

    folder = Path(folder)
    config, arch = read_config(folder)
    num_labels = len(config.get("id2label") or {}) or int(config.get("num_labels", 0) or 0)
    table, dataset = _table(dataset, num_labels)
    mapping = read_label_map(label_map) if label_map is not None else None
    labels = check_labels(config, table, folder / "config.json", mapping, label_map)
    pre = preprocessing(folder, arch)
    model, unused = load_folder(folder, arch, config)
    tokens = task_inputs(folder, config) if arch == "OneFormerForUniversalSegmentation" else None
    crop = _crop(pre["resize"], config)
    spec = data_spec or _SPEC[dataset]
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".bin"))
    record = {"format": HF_FORMAT, "folder": str(folder), "architecture": arch, "config": _deployed_config(config),
              "files": {n: sha256_file(folder / n) for n in files}, "mean": pre["mean"], "std": pre["std"],
              "color": "RGB", "preprocessor": pre, "id2label": labels, "label_map": mapping,
              "unused_keys": unused, "task_inputs": tokens, "transformers_version": _version()}
    inner = (config.get("backbone_config") or {}).get("model_type")
    backbone = f"hf:{config.get('model_type', 'model')}" + (f"/{inner}" if inner else "")
    cfg = HFModelConfig(name=f"hf_{config.get('model_type', 'model')}", architecture=arch, backbone=backbone,
                        num_classes=table.num_classes, img_size=crop)
    train_config = {"data": dataclasses.asdict(DataConfig(spec=spec, crop=crop, scale=crop)),
                    "eval": dataclasses.asdict(EvalConfig())}
    sha = export_model(out, model, cfg, table, spec, plain(train_config), source=record)
    return {**record, "weights_sha256": sha, "class_table": table.name, "dataset": dataset}


def _crop(resize: Any, config: dict[str, Any]) -> tuple[int, int]:
    """The processor's fixed (height, width), else the config's image size, else 512x512 (the slide default)."""
    if isinstance(resize, dict) and isinstance(resize.get("height"), int) and isinstance(resize.get("width"), int):
        return resize["height"], resize["width"]
    size = config.get("image_size") or (config.get("backbone_config") or {}).get("image_size")
    if isinstance(size, int) and size >= 16:
        return size, size
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v >= 16 for v in size):
        return size[0], size[1]
    return 512, 512


def _version() -> str:
    import transformers

    return str(transformers.__version__)


def format_summary(record: dict[str, Any]) -> str:
    """People-readable summary of an import."""
    pre = record["preprocessor"]
    lines = [f"imported {record['architecture']} from {record['folder']}",
             f"  classes: {len(record['id2label'])} ({record['class_table']}, id2label checked"
             f"{', with --map' if record['label_map'] else ''})",
             f"  input: mean {[round(v, 3) for v in record['mean']]} std {[round(v, 3) for v in record['std']]} "
             f"RGB from {pre['file'] or 'the processor defaults (no preprocessor_config.json)'} (folded into the "
             "model; it takes this project's ImageNet-normalised input)",
             f"  processor resize {pre['resize']} recorded, not applied (images run at their size; use --mode "
             "slide --crop HxW on eval/corrupt/analyze for window inference)"]
    if record["architecture"] in QUERY:
        lines.append("  class scores: softmax(class)[..., :-1] x sigmoid(masks), as post_process_semantic_segmentation")
    lines.append(f"  unused keys ({len(record['unused_keys'])}; auxiliary heads): "
                 f"{', '.join(record['unused_keys'][:4]) or 'none'}")
    lines.append(f"  weights sha256 {record['weights_sha256']}")
    return "\n".join(lines)
