"""The study file (YAML) and its resolution into a grid of steps.

A study names its dataset, one training budget (iterations) for every run, the training seeds, the models (a
recipe and ``--set`` overrides each) and what to evaluate::

    data: synthcity                       # every run trains and evaluates on this dataset spec
    iterations: 3000                      # equal budget: schedule.iters of every run
    seeds: [0, 1, 2]                      # training seeds (seed=...), every model gets all of them
    baseline: baseline                    # the model every other one is compared with
    train_set: [schedule.val_interval=200]  # overrides applied to every run
    models:
      baseline: {recipe: synthcity_tiny_baseline}
      rsseg: {recipe: synthcity_tiny_rsseg, set: [model.dca=true]}
    corrupt: {models: [baseline, rsseg], num_images: 50, suite: cityscapes-c, severities: 1-5}
    analyze: {num_images: 100, seeds: [0]}
    report: {resamples: 1000, seed: 0}

``iterations`` and ``seed`` may not be set per model (that would break the equal budget). The resolved grid is
saved in the study folder; a rerun with another grid is refused.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from repsep.errors import UserError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_TOP_KEYS = {"name", "data", "iterations", "seeds", "baseline", "train_set", "models", "corrupt", "analyze", "report"}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    recipe: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Study:
    """A resolved study: every field explicit."""

    name: str
    data: str
    iterations: int
    seeds: tuple[int, ...]
    baseline: str
    models: tuple[ModelSpec, ...]
    train_set: tuple[str, ...] = ()
    corrupt_models: tuple[str, ...] = ()
    corrupt_options: dict[str, Any] = field(default_factory=dict)
    analyze_seeds: tuple[int, ...] = ()
    analyze_options: dict[str, Any] = field(default_factory=dict)
    report_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)


def _fail(path: Path, message: str) -> None:
    raise UserError(f"{path}: {message}")


def _int_list(path: Path, key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool)
                                                             and 0 <= v < 2**32 for v in value):
        _fail(path, f"{key}: expected a non-empty list of seeds in 0..2**32-1, got {value!r}")
    if len(set(value)) != len(value):
        _fail(path, f"{key}: seeds repeat ({value})")
    return tuple(value)


def _options(path: Path, key: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(path, f"{key}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        _fail(path, f"{key}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return dict(value)


def _str_list(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        _fail(path, f"{key}: expected a list of KEY=VALUE overrides, got {value!r}")
    for item in value:
        if item.split("=", 1)[0].strip() in ("schedule.iters", "seed"):
            _fail(path, f"{key}: {item!r}: iterations and seed are set by the study (equal budget)")
    return tuple(value)


def load_study(path: str | Path) -> Study:
    """Read and check a study file; UserError naming the file and key on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: study file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        _fail(path, "expected a mapping at the top level")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        _fail(path, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    for key in ("data", "iterations", "seeds", "models"):
        if key not in raw:
            _fail(path, f"missing key {key!r}")
    iterations = raw["iterations"]
    if not isinstance(iterations, int) or isinstance(iterations, bool) or not 1 <= iterations <= 10**7:
        _fail(path, f"iterations: expected a positive integer, got {iterations!r}")
    if not isinstance(raw["data"], str) or not raw["data"]:
        _fail(path, f"data: expected a dataset spec string, got {raw['data']!r}")
    seeds = _int_list(path, "seeds", raw["seeds"])
    models_raw = raw["models"]
    if not isinstance(models_raw, dict) or not models_raw:
        _fail(path, "models: expected a mapping of model name -> {recipe, set}")
    models = []
    for name, entry in models_raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            _fail(path, f"models: {name!r} is not a usable folder name (letters, digits, _ . + -)")
        entry = _options(path, f"models.{name}", entry, {"recipe", "set"})
        if not isinstance(entry.get("recipe"), str):
            _fail(path, f"models.{name}.recipe: expected a recipe name or path")
        models.append(ModelSpec(name, entry["recipe"], _str_list(path, f"models.{name}.set", entry.get("set"))))
    names = [m.name for m in models]
    baseline = raw.get("baseline", names[0])
    if baseline not in names:
        _fail(path, f"baseline: {baseline!r} is not one of the models ({', '.join(names)})")
    corrupt = _options(path, "corrupt", raw.get("corrupt"), {"models", "num_images", "suite", "corruptions",
                                                             "severities", "backend", "seed", "workers"})
    if isinstance(corrupt.get("corruptions"), list):  # a YAML list of names, as --corruptions takes them
        corrupt["corruptions"] = ",".join(str(c) for c in corrupt["corruptions"])
    if "corruptions" in corrupt:
        from corruptions.suite import resolve_corruptions

        try:
            resolve_corruptions(names=str(corrupt["corruptions"]))
        except UserError as e:
            _fail(path, f"corrupt.corruptions: {e}")
    corrupt_models = tuple(corrupt.pop("models", names if corrupt else []))
    for name in corrupt_models:
        if name not in names:
            _fail(path, f"corrupt.models: {name!r} is not one of the models ({', '.join(names)})")
    analyze = _options(path, "analyze", raw.get("analyze"), {"num_images", "seeds", "tsne_layers", "seed"})
    analyze_seeds = _int_list(path, "analyze.seeds", analyze.pop("seeds")) if "seeds" in analyze else seeds[:1]
    if not set(analyze_seeds) <= set(seeds):
        _fail(path, f"analyze.seeds: {list(analyze_seeds)} are not all training seeds {list(seeds)}")
    report = _options(path, "report", raw.get("report"), {"resamples", "seed"})
    return Study(name=str(raw.get("name", path.stem)), data=raw["data"], iterations=iterations, seeds=seeds,
                 baseline=baseline, models=tuple(models), train_set=_str_list(path, "train_set", raw.get("train_set")),
                 corrupt_models=corrupt_models, corrupt_options=corrupt, analyze_seeds=analyze_seeds,
                 analyze_options=analyze, report_options=report)
