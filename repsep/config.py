"""Training configuration: frozen dataclasses loaded from YAML recipes, validated, overridable, saved resolved.

A recipe (``repsep/configs/*.yaml`` or any YAML file) has the sections of :class:`TrainConfig`. The ``model``
section names a registry entry (``name: rsseg_vit``) plus overrides of its :class:`repsep.models.ModelConfig`
fields. Unknown keys and wrong types are :class:`UserError` naming the file (or ``--set`` item) and the dotted
key. ``--set a.b=value`` overrides parse ``value`` as YAML. :func:`save_config` writes the resolved config,
which loads back to an equal :class:`TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from repsep.errors import UserError
from repsep.io import atomic_write_text, read_text
from repsep.schema import MAX_PIXELS, UINT32_MAX, Rule, Spec, check
from repsep.typed_dict import coerce, from_dict, plain

if TYPE_CHECKING:
    from repsep.models import ModelConfig

RECIPES_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_RECIPE = "synthcity_tiny_rsseg"
MIN_TRAIN_CROP = 64
"""Smallest training crop side: twice the coarsest feature stride (32), so batch norm sees more than one value."""
MAX_ITERS = 10**9

# ---- the schema: ranges and cross-field rules of every section, in one place ---------------------------------
# Types come from the annotations below; every float must also be finite (repsep.schema.check).

DATA_SPECS = {
    "crop": Spec(ge=MIN_TRAIN_CROP, le=MAX_PIXELS), "scale": Spec(ge=1, le=MAX_PIXELS),
    "ratio_range": Spec(gt=0, le=16), "cat_max_ratio": Spec(gt=0, le=1), "flip_prob": Spec(ge=0, le=1),
    "batch_size": Spec(ge=1, le=4096), "num_workers": Spec(ge=0, le=256),
}
DATA_RULES = (
    Rule("ratio_range", lambda d: d.ratio_range[0] <= d.ratio_range[1], "must be [low, high] with low <= high"),
    Rule("crop", lambda d: max(d.crop) <= max(d.scale) * d.ratio_range[1],
         "larger than any resized training image (longest side max(scale) x ratio_range high); "
         "every crop would be mostly padding"),
)
OPTIM_SPECS = {
    "lr": Spec(gt=0, le=10), "weight_decay": Spec(ge=0, le=10), "betas": Spec(ge=0, lt=1),
    "layer_decay": Spec(gt=0, le=1), "head_lr_mult": Spec(gt=0, le=1000), "warmup_iters": Spec(ge=0, le=MAX_ITERS),
    "warmup_ratio": Spec(gt=0, le=1), "power": Spec(gt=0, le=100), "clip_grad": Spec(gt=0),
}
SCHEDULE_SPECS = {
    "iters": Spec(ge=1, le=MAX_ITERS), "val_interval": Spec(ge=0, le=MAX_ITERS),
    "ckpt_interval": Spec(ge=1, le=MAX_ITERS), "log_interval": Spec(ge=1, le=MAX_ITERS),
}
EVAL_SPECS = {
    "crop": Spec(ge=16, le=MAX_PIXELS), "stride": Spec(ge=1, le=MAX_PIXELS), "scale": Spec(ge=1, le=MAX_PIXELS),
    "scales": Spec(ge=0.0625, le=16, min_len=1, max_len=16),
}
EVAL_RULES = (
    Rule("crop/stride", lambda e: e.mode != "slide" or (e.crop is not None and e.stride is not None),
         "slide mode needs both"),
    Rule("stride", lambda e: e.crop is None or e.stride is None
         or (e.stride[0] <= e.crop[0] and e.stride[1] <= e.crop[1]),
         "must be at most the crop in each dimension (windows would skip pixels)"),
)
TRAIN_SPECS = {"accum_steps": Spec(ge=1, le=4096), "seed": Spec(ge=0, le=UINT32_MAX)}


@dataclass(frozen=True)
class DataConfig:
    """Dataset and training augmentation (mmseg pipeline: resize to ``scale`` x ratio, crop, flip, photometric).

    Sizes are (H, W) in pixels. ``batch_size`` is per process and per micro-batch: the effective batch is
    ``batch_size x accum_steps x world_size``.
    """

    spec: str = "synthcity"
    train_split: str = "train"
    val_split: str = "val"
    crop: tuple[int, int] = (512, 512)
    scale: tuple[int, int] = (512, 1024)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    photometric: bool = True
    batch_size: int = 2
    num_workers: int = 2
    #: whole-split check before training: ``full`` (headers, sizes and every label value) or ``headers`` (no
    #: label decode; faster on big datasets)
    scan: Literal["full", "headers"] = "full"

    def __post_init__(self):
        check(self, DATA_SPECS, DATA_RULES)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with layer-wise lr decay, head lr multiplier, poly schedule with linear warm-up, grad clipping.

    ``lr`` is the peak lr of the last backbone block; block i of L gets ``lr * layer_decay ** (L + 1 - i)``, the
    decode head ``lr * head_lr_mult``. Warm-up starts at ``warmup_ratio x`` the scheduled lr. ``clip_grad`` is a
    max global grad norm (null = off).
    """

    lr: float = 6e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    layer_decay: float = 1.0
    head_lr_mult: float = 1.0
    warmup_iters: int = 0
    warmup_ratio: float = 1e-6
    power: float = 1.0
    clip_grad: float | None = None

    def __post_init__(self):
        check(self, OPTIM_SPECS)


@dataclass(frozen=True)
class ScheduleConfig:
    """Iteration counts: total optimizer steps, and every how many steps to validate / checkpoint / log.

    ``val_interval`` 0 validates only at the end.
    """

    iters: int = 1000
    val_interval: int = 0
    ckpt_interval: int = 500
    log_interval: int = 50

    def __post_init__(self):
        check(self, SCHEDULE_SPECS)


@dataclass(frozen=True)
class EvalConfig:
    """Validation inference: ``whole`` image or ``slide`` windows (``crop``, ``stride`` as (H, W)); ``scale``
    resizes validation images first (null = native size); ``scales``/``flip`` are test-time augmentation."""

    mode: Literal["whole", "slide"] = "whole"
    crop: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    scale: tuple[int, int] | None = None
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    def __post_init__(self):
        check(self, EVAL_SPECS, EVAL_RULES)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. ``amp`` is autocast precision (``none`` on CPU recipes)."""

    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    amp: Literal["none", "bf16", "fp16"] = "none"
    accum_steps: int = 1
    seed: int = 0
    pretrained: str | None = None
    """Local timm backbone checkpoint (.pth / .npz / .safetensors) loaded before training; null = random init."""

    def __post_init__(self):
        check(self, TRAIN_SPECS)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), the content of ``config.yaml``."""
        return plain(dataclasses.asdict(self))


def _localns() -> dict[str, Any]:
    from repsep.models import ModelConfig

    return {"ModelConfig": ModelConfig}


def _model_section(data: Any, source: str) -> ModelConfig:
    """``{name: <registry name>, <field>: <override>, ...}`` -> ``model_config(name, **overrides)``.

    A section listing every ModelConfig field (the ``config.yaml`` of a run) is taken as is.
    """
    from repsep.models import MODELS, ModelConfig, model_config
    from repsep.models.config import ADDED_FIELDS

    if not isinstance(data, dict):
        raise UserError(f"{source}: model: expected a mapping with a 'name' key, got {data!r}")
    if not isinstance(data.get("name"), str) or data["name"] not in MODELS:
        raise UserError(f"{source}: model.name: expected one of {', '.join(MODELS)}, got {data.get('name')!r}")
    hints = typing.get_type_hints(ModelConfig)
    for k in data:
        if k not in hints:
            raise UserError(f"{source}: unknown key 'model.{k}' (known: {', '.join(hints)})")
    values = {k: coerce(v, hints[k], f"model.{k}", source) for k, v in data.items()}
    try:
        if set(hints) - set(values) <= ADDED_FIELDS:  # a saved config (maybe older than the newest fields)
            return ModelConfig(**values)
        return model_config(values.pop("name"), **values)
    except UserError as e:
        raise UserError(f"{source}: {e}") from None


def config_from_dict(data: Any, source: str) -> TrainConfig:
    """Validate a raw (YAML-parsed) recipe into a :class:`TrainConfig`."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of sections at the top level, got {type(data).__name__}")
    if "model" not in data:
        raise UserError(f"{source}: missing key 'model'")
    return from_dict(TrainConfig, {**data, "model": _model_section(data["model"], source)}, source, localns=_localns())


# ---- files and overrides --------------------------------------------------------------------------------------

def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A YAML path as given, or the name of a bundled recipe (``synthcity_tiny_rsseg``, with or without .yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = RECIPES_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and bundled.is_file():
        return bundled
    raise UserError(f"{name_or_path}: config file not found (bundled recipes: {', '.join(list_recipes())})")


def read_yaml(path: Path) -> Any:
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise UserError(f"{path}: not valid YAML ({where}{getattr(e, 'problem', None) or e})") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of more than 4300 digits, absurd nesting
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0][:200]})") from None


def set_source(item: str) -> str:
    """``--set ITEM`` as errors name it: quoted (escapes shown) when it holds control characters like newlines."""
    return f"--set {item!r}" if any(ord(c) < 32 for c in item) else f"--set {item}"


def apply_override(data: dict[str, Any], item: str) -> dict[str, Any]:
    """A copy of ``data`` with ``item`` = ``"a.b.c=value"`` set (``value`` parsed as YAML)."""
    key, sep, text = item.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"{set_source(item)}: expected KEY=VALUE with a dotted key, e.g. optim.lr=1e-4")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except (yaml.YAMLError, ValueError, RecursionError):
        raise UserError(f"{set_source(item)}: value is not valid YAML") from None
    out = dict(data)
    node = out
    *parents, last = key.split(".")
    for i, part in enumerate(parents):
        child = node.get(part, {})
        if not isinstance(child, dict):
            raise UserError(f"{set_source(item)}: {'.'.join(parents[:i + 1])!r} is not a section")
        node[part] = dict(child)
        node = node[part]
    node[last] = value
    return out


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Load, validate and override a recipe; each ``--set`` item is validated on its own and named in errors."""
    path = resolve_recipe(name_or_path)
    data = read_yaml(path)
    cfg = config_from_dict(data, str(path))
    for item in overrides:
        data = apply_override(data, item)
        cfg = config_from_dict(data, set_source(item))
    return cfg


class _Dumper(yaml.SafeDumper):
    """Block-style mappings, one-line lists (``crop: [512, 512]``)."""


_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def dump_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML text (field order, deterministic)."""
    return yaml.dump(cfg.to_dict(), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    atomic_write_text(path, dump_config(cfg))
