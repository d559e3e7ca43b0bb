"""Models trained with several seeds: runs of one configuration grouped, and each configuration's mean and spread.

Two models are one *configuration* when their saved training configs (the train folder's ``config.yaml``, else
the checkpoint's ``train_config``) are equal in everything but :data:`NOT_CONFIGURATION` (the seed and settings
that do not change what is trained). A model whose config is not at hand is a configuration of its own. The
configuration is named after its models: the common name before ``-seed<S>`` (``baseline-seed0``,
``baseline-seed1`` -> ``baseline``), else the first model's name. Two models of one config and one seed (a run
repeated, or made by other code) are two configurations.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.report.common import dataset_note
from analysis.report.reader import ModelEntry, finite
from analysis.seed_bootstrap import seed_mean_sd
from analysis.tables import Column, Table
from analysis.training_curves import fitted_change, last_fifth_change
from repsep.errors import UserError

NOT_CONFIGURATION = ("seed", "data.num_workers", "schedule.ckpt_interval", "schedule.log_interval")
"""Training-config fields in which runs of one configuration may differ."""
TRAINING_PASSES = 3
"""Training compute = forward GMACs x 3 (the backward pass costs about twice the forward), per image seen."""
_SEED_SUFFIX = re.compile(r"^(.+?)[-_]seed(\d+)$")


@dataclass
class SeedGroup:
    """One configuration: its models (one per training seed, ordered by seed) and their seeds (None: unknown)."""

    name: str
    members: list[ModelEntry]
    seeds: list[int | None]
    train_config: dict[str, Any] | None

    @property
    def first(self) -> ModelEntry:
        return self.members[0]

    def values(self, score: str) -> list[float]:
        """The finite values of ``score`` (``clean``, ``mPC``, ``rPC``) over the members that have it."""
        got = [_score(m, score) for m in self.members]
        return [v for v in got if v is not None]


def _score(m: ModelEntry, score: str) -> float | None:
    if score == "clean":
        return m.clean_miou()
    return None if m.corrupt is None else finite(m.corrupt.result.get(score))


def _train_config(entry: ModelEntry) -> dict[str, Any] | None:
    if entry.train is not None:
        from repsep.engine.run_folder import load_run_config

        return json.loads(json.dumps(dataclasses.asdict(load_run_config(entry.train.path))))
    ckpt = next((r.checkpoint for r in entry.runs if r.checkpoint is not None and r.checkpoint.is_file()), None)
    if ckpt is None:
        return None
    from repsep.engine.checkpoint import load_model

    config = load_model(ckpt).train_config
    # only a repsep-bench training config says what was trained (an imported model's is not one)
    return json.loads(json.dumps(config)) if config and "model" in config else None


def _without(config: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out = json.loads(json.dumps(config))
    for dotted in fields:
        *parents, leaf = dotted.split(".")
        node = out
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def _group_name(names: list[str], taken: set[str]) -> str:
    matches = [_SEED_SUFFIX.match(n) for n in names]
    stems = {m.group(1) for m in matches if m is not None}
    name = stems.pop() if len(stems) == 1 and all(matches) else names[0]
    while name in taken:
        name = f"{name}'"
    return name


def group_models(models: Mapping[str, ModelEntry]) -> dict[str, SeedGroup]:
    """Configurations of ``models`` in the order first seen; members ordered by seed."""
    keyed: dict[tuple[str, int], list[tuple[ModelEntry, dict[str, Any] | None]]] = {}
    for entry in models.values():
        config = _train_config(entry)
        key = entry.key if config is None else json.dumps(_without(config, NOT_CONFIGURATION), sort_keys=True)
        copy = 0  # two models of one config and one seed (e.g. trained twice) are two configurations
        while any(c is not None and c.get("seed") == config.get("seed") for _, c in keyed.get((key, copy), [])):
            copy += 1
        keyed.setdefault((key, copy), []).append((entry, config))
    groups: dict[str, SeedGroup] = {}
    for members in keyed.values():
        members.sort(key=lambda mc: (mc[1] or {}).get("seed", 0))
        seeds = [None if c is None else int(c.get("seed", 0)) for _, c in members]
        name = _group_name([m.name for m, _ in members], set(groups))
        groups[name] = SeedGroup(name, [m for m, _ in members], seeds, members[0][1])
    return groups


def group_of_model(groups: Mapping[str, SeedGroup], name: str) -> str | None:
    """The configuration holding the model called ``name`` (or called ``name`` itself)."""
    if name in groups:
        return name
    return next((g.name for g in groups.values() if any(m.name == name for m in g.members)), None)


def training_pmacs(group: SeedGroup) -> float | None:
    """Training compute of one run (10^15 multiply-adds): training-mode forward GMACs at the crop x
    :data:`TRAINING_PASSES` x batch size x accumulation steps x iterations; None without a training config."""
    cfg = group.train_config
    if not cfg or "model" not in cfg:  # none, or not a repsep-bench training (an imported model)
        return None
    from repsep.config import config_from_dict
    from repsep.models.profile import training_gmacs

    try:
        train = config_from_dict(cfg, f"{group.name}: train config")
    except UserError:  # a config this code cannot rebuild (e.g. written by another tool): no figure
        return None
    crop = tuple(int(v) for v in train.data.crop)
    per_image = training_gmacs(train.model, crop)  # type: ignore[arg-type]
    images = train.data.batch_size * train.accum_steps * train.schedule.iters
    return per_image * TRAINING_PASSES * images / 1e6


def _fitted(curve: list[tuple[int, float]], iters: int) -> float | None:
    span = last_fifth_change(curve, iters)
    return None if span is None else fitted_change(curve, span[0])


def seeds_table(groups: Mapping[str, SeedGroup], curves: Mapping[str, list[tuple[int, float]]],
                iters: Mapping[str, int]) -> Table | None:
    """One row per configuration: seeds, iterations, training compute, clean mIoU / mPC / rPC as mean and sample
    standard deviation over seeds, and the mean fitted val-mIoU change over the last fifth of training."""
    rows = []
    for g in groups.values():
        stats: list[float | None] = []
        for score in ("clean", "mPC", "rPC"):
            values = g.values(score)
            mean, sd = seed_mean_sd(values) if values else (None, None)
            stats += [mean, sd]
        fitted = [f for m in g.members if m.name in curves
                  and (f := _fitted(curves[m.name], iters[m.name])) is not None]
        known = [s for s in g.seeds if s is not None]
        rows.append((g.name, len(g.members), ", ".join(map(str, known)) or None, g.first.iterations(),
                     training_pmacs(g), *stats, float(np.mean(fitted)) if fitted else None))
    if not any(len(g.members) > 1 for g in groups.values()):
        return None
    note = dataset_note(r for g in groups.values() for m in g.members for r in (m.eval_ss, m.corrupt)) + (
        "One row per configuration (models whose training configs differ only in the seed); mean and sample "
        "standard deviation (ddof 1; – for one seed) over its training seeds of the single-scale clean mIoU, mPC "
        f"and rPC (%). Training compute: training-mode forward GMACs at the crop x {TRAINING_PASSES} (backward "
        "about twice the forward) x images seen (batch x accumulation x iterations), in 10^15 multiply-adds "
        "(PMACs). Fitted Δ last fifth: the mean over seeds of the val-mIoU change along a least-squares line "
        "through the validations of the last fifth of training (see the convergence table; a run still rising "
        "has a clearly positive value).")
    return Table("seeds", "Per configuration: mean ± sd over training seeds", (
        Column("configuration"), Column("runs", "d"), Column("seeds"), Column("iterations"),
        Column("training PMACs", ".3f"), Column("mean", ".2f", "clean mIoU"), Column("sd", ".2f", "clean mIoU"),
        Column("mean", ".2f", "mPC"), Column("sd", ".2f", "mPC"), Column("mean", ".2f", "rPC"),
        Column("sd", ".2f", "rPC"), Column("fitted Δ last fifth", "+.2f")), tuple(rows), note=note)
