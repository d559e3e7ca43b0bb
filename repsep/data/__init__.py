"""Datasets: Cityscapes, ADE20K, the embedded SynthCity, real adverse-condition sets and RSSeg's other benchmarks,
opened by a spec string.

Specs: ``cityscapes:PATH``, ``ade20k:PATH``, ``synthcity`` (the default SynthCity, generated once into the cache
folder ``$REPSEP_CACHE``, default ``~/.cache/repsep-bench``) and ``synthcity:PATH`` (a folder written by
``repsep-bench data synth``, Cityscapes layout); ``acdc:PATH[:fog|night|rain|snow|all]``, ``darkzurich:PATH``,
``foggy_cityscapes:PATH[:0.005|0.01|0.02]``, ``rain_cityscapes:PATH`` (19 Cityscapes classes);
``pascal_context59:PATH``, ``coco_stuff164k:PATH``, ``coco_stuff10k:PATH``. Layouts: docs/datasets.md. Heavy modules
are imported lazily.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from repsep.errors import UserError

if TYPE_CHECKING:
    from repsep.data.base import SegmentationDataset, Transform

SYNTHCITY_DEFAULT = {"num_train": 300, "num_val": 100, "size": (256, 512), "seed": 0}
"""The default SynthCity behind the ``synthcity`` spec (layout Cityscapes, default knobs)."""

SPEC_KINDS = ("cityscapes", "ade20k", "synthcity", "acdc", "darkzurich", "foggy_cityscapes", "rain_cityscapes",
              "pascal_context59", "coco_stuff164k", "coco_stuff10k")


def cache_dir() -> Path:
    """``$REPSEP_CACHE`` or ``~/.cache/repsep-bench``."""
    return Path(os.environ.get("REPSEP_CACHE") or Path.home() / ".cache" / "repsep-bench")


def default_synthcity_root(progress: bool = True) -> Path:
    """The default SynthCity folder, generated atomically on first use (concurrent callers are safe)."""
    from repsep.data.synthcity import SceneKnobs, generate, synth_meta
    from repsep.manifest import config_hash

    params = SYNTHCITY_DEFAULT
    meta = synth_meta(params["num_train"], params["num_val"], params["size"], params["seed"], "cityscapes",
                      SceneKnobs())
    root = cache_dir() / f"synthcity-{config_hash(meta)}"
    return generate(root, params["num_train"], params["num_val"], size=params["size"], seed=params["seed"],
                    progress=progress)


def spec_root(spec: str) -> str | None:
    """The dataset folder a spec names (``acdc:/data/acdc:fog`` -> ``/data/acdc``), None for the default
    ``synthcity``."""
    from repsep.data.adverse import ACDC_CONDITIONS, FOGGY_BETAS, split_option

    kind, _, path = spec.partition(":")
    if kind == "acdc":
        path = split_option(spec, (*ACDC_CONDITIONS, "all"))[0]
    elif kind == "foggy_cityscapes":
        path = split_option(spec, FOGGY_BETAS)[0]
    return path or None


def _open_kind(kind: str, spec: str, split: str, transform: Transform | None) -> SegmentationDataset:
    from repsep.data import adverse, context_coco
    from repsep.data.ade20k import ADE20KDataset
    from repsep.data.cityscapes import CityscapesDataset

    path = spec_root(spec) or ""
    if kind == "ade20k":
        return ADE20KDataset(path, split, transform, spec=spec)
    if kind in ("cityscapes", "synthcity"):
        return CityscapesDataset(path, split, transform, spec=spec)
    if kind == "acdc":
        condition = adverse.split_option(spec, (*adverse.ACDC_CONDITIONS, "all"))[1]
        return adverse.ACDCDataset(path, split, transform, condition=condition or "all", spec=spec)
    if kind == "foggy_cityscapes":
        beta = adverse.split_option(spec, adverse.FOGGY_BETAS)[1]
        return adverse.FoggyCityscapesDataset(path, split, transform, beta=beta or "0.02", spec=spec)
    readers = {"darkzurich": adverse.DarkZurichDataset, "rain_cityscapes": adverse.RainCityscapesDataset,
               "pascal_context59": context_coco.PascalContext59Dataset,
               "coco_stuff164k": context_coco.COCOStuff164kDataset, "coco_stuff10k": context_coco.COCOStuff10kDataset}
    return readers[kind](path, split, transform, spec=spec)


def open_dataset(spec: str, split: str, transform: Transform | None = None) -> SegmentationDataset:
    """Open the dataset named by ``spec`` (see module docstring) at ``split`` (``train``/``val``)."""
    from repsep.data.cityscapes import CityscapesDataset

    kind, _, path = spec.partition(":")
    if kind not in SPEC_KINDS:
        raise UserError(f"dataset {spec!r}: unknown kind {kind!r}; use one of synthcity, "
                        + ", ".join(f"{k}:PATH" for k in SPEC_KINDS))
    if kind == "synthcity" and not path:
        return CityscapesDataset(default_synthcity_root(), split, transform, spec=spec)
    if not path:
        raise UserError(f"dataset {spec!r}: missing the folder, write {kind}:PATH")
    try:
        return _open_kind(kind, spec, split, transform)
    except OSError as e:  # a name too long, a folder without read permission, a loop of links
        raise UserError(f"{e.filename or path}: cannot read the dataset ({e.strerror or e})") from None
