"""Import an mmsegmentation 1.x checkpoint of a ViT segmenter into this project's model export.

``import_mmseg(ckpt, arch)`` reads ``{"meta", "state_dict"}`` (``torch.load(weights_only=True)``), derives the
model config from the weights' shapes (ViT width / depth / patch / position grid, head channels, classes), fills
what shapes cannot tell (attention heads, tapped blocks, class-token use, position-embedding resize mode) from
the checkpoint's recorded config text when present, else from the mmseg config of that architecture, maps the
keys (:mod:`.mmseg_keys`), and checks that every weight of the deployed model is present with its shape.
:func:`export_mmseg` writes the result with :func:`repsep.engine.checkpoint.export_model`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from repsep.errors import UserError
from repsep.manifest import sha256_file
from repsep.models.backbones import default_taps
from repsep.models.baselines import BASELINES
from repsep.models.config import ModelConfig
from repsep.models.importers.mmseg_keys import convert_key

MMSEG_NORM = {"imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
              "segmenter": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5))}
"""mmseg data-preprocessor mean/std (0-255 RGB): ImageNet for UperNet-ViT and SETR, 127.5 for Segmenter."""

_TIMM_NAME = {192: "vit_tiny_patch16_384", 384: "vit_small_patch16_384", 768: "vit_base_patch16_384",
              1024: "vit_large_patch16_384"}


@dataclass
class Imported:
    """An mmseg checkpoint turned into a project model (eval mode, deployed)."""

    model: torch.nn.Module
    config: ModelConfig
    classes: tuple[str, ...] | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    unused: list[str]
    sources: dict[str, str] = field(default_factory=dict)
    file_sha256: str = ""


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, meta)`` of an mmseg checkpoint; a foreign file is a one-line UserError."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - the weights-only unpickler raises many types
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UserError(f"{path}: cannot read as a weights-only torch checkpoint ({msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise UserError(f"{path}: not an mmseg checkpoint (expected a dict with 'meta' and 'state_dict')")
    state = {k: v for k, v in obj["state_dict"].items() if isinstance(v, torch.Tensor)}
    if not any(k.startswith("backbone.patch_embed.projection.") for k in state):
        raise UserError(f"{path}: not an mmseg VisionTransformer checkpoint (no backbone.patch_embed.projection.*)")
    return state, obj.get("meta") if isinstance(obj.get("meta"), dict) else {}


def _cfg_value(text: str, section: str, key: str) -> str | None:
    """The first ``key=VALUE`` after ``section=dict(`` in an mmengine pretty config text."""
    start = text.find(f"{section}=dict(")
    if start < 0:
        return None
    m = re.search(rf"\b{key}\s*=\s*(\([^)]*\)|\[[^\]]*\]|'[^']*'|\"[^\"]*\"|[\w.\-]+)", text[start:])
    return m.group(1).strip("'\"") if m else None


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"-?\d+", text))


def derive_config(state: dict[str, torch.Tensor], meta: dict[str, Any], arch: str,
                  crop: tuple[int, int] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """ModelConfig fields for ``arch`` from the weights' shapes (+ the meta config text); and where each came
    from (``shape`` / ``meta`` / ``mmseg default``)."""
    src: dict[str, str] = {}
    pos = state["backbone.pos_embed"]
    dim, patch = pos.shape[2], state["backbone.patch_embed.projection.weight"].shape[-1]
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"backbone\.layers\.(\d+)\.", k)))
    tokens = pos.shape[1] - 1
    if crop and (crop[0] // patch) * (crop[1] // patch) == tokens:
        grid = (crop[0] // patch, crop[1] // patch)
    elif math.isqrt(tokens) ** 2 == tokens:
        grid = (math.isqrt(tokens),) * 2
    else:
        raise UserError(f"backbone.pos_embed: {tokens} grid tokens are not a square; give --crop HxW of training")
    text = str(meta.get("cfg") or "")
    heads = _cfg_value(text, "backbone", "num_heads")
    out_idx = _cfg_value(text, "backbone", "out_indices")
    cls_tok = _cfg_value(text, "backbone", "with_cls_token")
    interp = _cfg_value(text, "backbone", "interpolate_mode")
    f: dict[str, Any] = dict(embed_dim=dim, patch_size=patch, depth=depth, img_size=(grid[0] * patch, grid[1] * patch),
                             num_classes=_num_classes(state, arch))
    src.update(embed_dim="shape", patch_size="shape", depth="shape", img_size="shape", num_classes="shape")
    f["num_heads"], src["num_heads"] = (int(heads), "meta") if heads else (max(1, dim // 64), "mmseg default")
    if out_idx:
        f["taps"], src["taps"] = tuple(sorted(i % depth + 1 for i in _ints(out_idx))), "meta"
    else:
        f["taps"], src["taps"] = _default_taps(arch, depth), "mmseg default"
    f["final_norm"], src["final_norm"] = "backbone.ln1.weight" in state, "shape"
    if cls_tok:
        f["with_cls_token"], src["with_cls_token"] = cls_tok == "True", "meta"
    else:
        f["with_cls_token"], src["with_cls_token"] = arch != "setr_mla", "mmseg default"
    default_interp = "bilinear" if arch.startswith("setr") else "bicubic"
    f["pos_interp"], src["pos_interp"] = (interp, "meta") if interp else (default_interp, "mmseg default")
    f.update(_head_fields(state, arch, dim, text, src))
    if f["final_norm"] and max(f["taps"]) != depth:
        f["final_norm"] = False  # mmseg's final norm only touches the last block, which no tap reads
    return f, src


def _num_classes(state: dict[str, torch.Tensor], arch: str) -> int:
    key = "decode_head.cls_emb" if arch == "segmenter_mask" else "decode_head.conv_seg.weight"
    if key not in state:
        raise UserError(f"missing keys [{key}]: not a {arch} checkpoint")
    return state[key].shape[1] if arch == "segmenter_mask" else state[key].shape[0]


def _default_taps(arch: str, depth: int) -> tuple[int, ...]:
    if arch.startswith("segmenter"):
        return (depth,)
    if arch in ("setr_naive", "setr_pup") and depth == 24:
        return (10, 15, 20, 24)
    return default_taps(depth) if depth >= 4 else tuple(range(1, depth + 1))


def _shape0(state: dict[str, torch.Tensor], key: str, arch: str) -> int:
    if key not in state:
        raise UserError(f"missing keys [{key}]: not a {arch} checkpoint")
    return int(state[key].shape[0])


def _head_fields(state: dict[str, torch.Tensor], arch: str, dim: int, text: str, src: dict[str, str]
                 ) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if arch == "upernet_vit":
        f["neck_width"] = _shape0(state, "neck.lateral_convs.0.conv.weight", arch)
        f["width"] = _shape0(state, "decode_head.bottleneck.conv.weight", arch)
        aux = "auxiliary_head.convs.0.conv.weight"
        f["aux_width"] = int(state[aux].shape[0]) if aux in state else None
    elif arch in ("setr_naive", "setr_pup"):
        f["width"] = _shape0(state, "decode_head.up_convs.0.0.conv.weight", arch)
        aux = "auxiliary_head.0.up_convs.0.0.conv.weight"
        f["aux_width"] = int(state[aux].shape[0]) if aux in state else None
    elif arch == "setr_mla":
        f["neck_width"] = _shape0(state, "neck.mla.channel_proj.0.conv.weight", arch)
        f["mla_width"] = _shape0(state, "decode_head.up_convs.0.0.conv.weight", arch)
        f["width"] = 4 * f["mla_width"]
    elif arch == "segmenter_linear":
        f["width"] = dim
    elif arch == "segmenter_mask":
        f["width"] = _shape0(state, "decode_head.dec_proj.weight", arch)
        f["decoder_layers"] = 1 + max(int(m.group(1)) for k in state
                                      if (m := re.match(r"decode_head\.layers\.(\d+)\.", k)))
        heads = _cfg_value(text, "decode_head", "num_heads")
        f["decoder_heads"] = int(heads) if heads else max(1, f["width"] // 64)
        src["decoder_heads"] = "meta" if heads else "mmseg default"
    src.update({k: "shape" for k in f if k not in src})
    return f


def import_mmseg(path: str | Path, arch: str, crop: tuple[int, int] | None = None,
                 overrides: dict[str, Any] | None = None) -> Imported:
    """Convert the mmseg checkpoint at ``path`` (architecture ``arch``) into a deployed project model."""
    from repsep.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from repsep.models import build_model, model_config

    if arch not in BASELINES:
        raise UserError(f"--arch {arch!r}: choose one of {', '.join(BASELINES)}")
    path = Path(path)
    state, meta = read_checkpoint(path)
    fields, sources = derive_config(state, meta, arch, crop)
    fields.update(overrides or {})
    sources.update({k: "--set" for k in overrides or {}})
    backbone = _TIMM_NAME.get(fields["embed_dim"], "vit_base_patch16_384")
    cfg = model_config(arch, size="custom", backbone=backbone, **fields)
    model = build_model(cfg).deploy().eval()
    expected = model.state_dict()
    converted, unused = {}, []
    for key, value in state.items():
        new = convert_key(key, arch)
        if new is None or new not in expected:
            unused.append(key)
        else:
            converted[new] = value
    bias = "backbone.model.patch_embed.proj.bias"
    if bias not in converted:  # mmseg's patch_bias=False: a zero bias is the same function
        converted[bias] = torch.zeros_like(expected[bias])
        sources["patch_embed_bias"] = "zero (mmseg patch_bias=False)"
    missing = [k for k in expected if k not in converted and k not in ("input_scale", "input_shift")]
    if missing:
        raise UserError(f"{path}: does not fit {arch}: missing weights for {', '.join(missing[:3])}"
                        f"{' ...' if len(missing) > 3 else ''} ({len(missing)} in all)")
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in converted.items()
             if v.shape != expected[k].shape]
    if wrong:
        raise UserError(f"{path}: does not fit {arch}: mis-shaped weights {'; '.join(wrong[:3])}"
                        f"{' ...' if len(wrong) > 3 else ''}")
    converted["input_scale"], converted["input_shift"] = expected["input_scale"], expected["input_shift"]
    model.load_state_dict(converted, strict=True)
    mean, std = MMSEG_NORM["segmenter" if arch.startswith("segmenter") else "imagenet"]
    preproc = _mean_std(str(meta.get("cfg") or ""))
    if preproc:
        mean, std = preproc
    model.set_input_normalisation(mean, std, IMAGENET_MEAN, IMAGENET_STD)
    classes = (meta.get("dataset_meta") or {}).get("classes")
    return Imported(model=model, config=cfg, classes=tuple(classes) if classes else None, mean=tuple(mean),
                    std=tuple(std), unused=sorted(unused), sources=sources, file_sha256=sha256_file(path))


def _mean_std(text: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    mean, std = _cfg_value(text, "data_preprocessor", "mean"), _cfg_value(text, "data_preprocessor", "std")
    if not mean or not std:
        return None
    m, s = tuple(float(v) for v in re.findall(r"[\d.]+", mean)), tuple(float(v) for v in re.findall(r"[\d.]+", std))
    return (m, s) if len(m) == 3 and len(s) == 3 else None


_EVAL = {"cityscapes": ((768, 768), (512, 512)), "ade20k": ((512, 512), (341, 341))}
"""mmseg's slide test settings (crop, stride) of the ViT configs per dataset."""


def _class_table(dataset: str | None, classes: tuple[str, ...] | None, num_classes: int, path: Path):
    from repsep.data.labels import ADE20K, CITYSCAPES, ClassTable

    if dataset is None:
        dataset = {19: "cityscapes", 150: "ade20k"}.get(num_classes)
    if dataset == "cityscapes":
        table = CITYSCAPES
    elif dataset == "ade20k":
        table = ADE20K
    elif dataset is None:
        names = classes if classes and len(classes) == num_classes else tuple(f"class{i}" for i in range(num_classes))
        table = ClassTable(name="mmseg", classes=tuple(str(c) for c in names),
                           palette=tuple(((37 * i) % 256, (91 * i) % 256, (157 * i) % 256) for i in range(num_classes)))
    else:
        raise UserError(f"--dataset {dataset!r}: choose cityscapes or ade20k")
    if table.num_classes != num_classes:
        raise UserError(f"{path}: the checkpoint predicts {num_classes} classes but --dataset {dataset} has "
                        f"{table.num_classes}")
    return table, dataset


def export_mmseg(imported: Imported, out: str | Path, ckpt: str | Path, arch: str, dataset: str | None = None,
                 crop: tuple[int, int] | None = None, data_spec: str | None = None) -> dict[str, Any]:
    """Write ``imported`` as a project model export at ``out``; returns the import record (stored as the export's
    ``source``), with ``weights_sha256``. The export's training config is a full, valid one: the model, the
    dataset spec, and the slide evaluation of mmseg's test pipeline."""
    from repsep.config import config_from_dict
    from repsep.engine.checkpoint import export_model

    cfg = imported.config
    table, dataset = _class_table(dataset, imported.classes, cfg.num_classes, Path(ckpt))
    img = cfg.img_size if isinstance(cfg.img_size, tuple) else (cfg.img_size, cfg.img_size)
    eval_crop, eval_stride = _EVAL.get(dataset or "", (img, (img[0] * 2 // 3, img[1] * 2 // 3)))
    if crop is not None:
        eval_crop, eval_stride = crop, (crop[0] * 2 // 3, crop[1] * 2 // 3)
    spec = data_spec or {"cityscapes": "cityscapes:data/cityscapes", "ade20k": "ade20k:data/ade20k"}.get(
        dataset or "", "synthcity")
    record = {"format": "mmseg-1.x", "file": str(ckpt), "file_sha256": imported.file_sha256, "arch": arch,
              "mean": list(imported.mean), "std": list(imported.std), "color": "RGB",
              "config_sources": dict(imported.sources), "unused_keys": list(imported.unused)}
    train_config = config_from_dict({
        "model": dataclasses.asdict(cfg),
        "data": {"spec": spec, "crop": list(eval_crop), "scale": list(eval_crop)},
        "eval": {"mode": "slide", "crop": list(eval_crop), "stride": list(eval_stride)},
    }, f"{ckpt} (imported config)").to_dict()
    record["weights_sha256"] = export_model(out, imported.model, cfg, table, spec, train_config, source=record)
    record["class_table"] = table.name
    return record


def format_summary(imported: Imported, record: dict[str, Any]) -> str:
    """People-readable summary of an import: config and where each value came from, normalisation, keys."""
    cfg = imported.config
    lines = [f"imported {record['arch']} from {record['file']} (sha256 {record['file_sha256'][:16]}...)",
             f"  classes: {cfg.num_classes} ({record['class_table']}); input: mmseg mean {record['mean']} "
             f"std {record['std']} RGB (folded into the model; it takes this project's ImageNet-normalised input)"]
    for name, source in sorted(imported.sources.items()):
        if hasattr(cfg, name):
            lines.append(f"  {name:<16} {getattr(cfg, name)!s:<24} from {source}")
        else:
            lines.append(f"  {name:<16} {source}")
    unused = imported.unused
    shown = ", ".join(unused[:6]) + (" ..." if len(unused) > 6 else "")
    lines.append(f"  unused keys ({len(unused)}; e.g. auxiliary heads): {shown or 'none'}")
    lines.append(f"  weights sha256 {record['weights_sha256']}")
    return "\n".join(lines)
