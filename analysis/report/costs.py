"""Model config, parameters and cost of each model, by the project's one convention.

Cost is **GMACs** (10^9 multiply-adds, what mmseg/fvcore print as "GFLOPs") and parameters are those of the
deployed model (no training-only heads): ``info["gmacs"]["total"]`` and ``info["params"]["inference"]`` of
:func:`repsep.models.profile.model_info`, the numbers ``models info`` prints, at the training crop.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from analysis.report.reader import ModelEntry
from repsep.errors import UserError


def _image_size(img_size: Any, crop: Any) -> tuple[int, int] | None:
    size = img_size if img_size is not None else crop
    if size is None:
        return None
    return (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))


def fill_model(entry: ModelEntry) -> None:
    """Set ``entry.model_config`` and ``entry.info`` (params, gmacs, image_size): from its train folder
    (``config.yaml``; ``model_info.json`` when one was saved with ``models info --json``), else from its
    checkpoint file; left empty when neither is at hand."""
    train = entry.train
    ckpt = next((r.checkpoint for r in entry.runs if r.checkpoint is not None and r.checkpoint.is_file()), None)
    if train is not None:
        from repsep.engine.run_folder import load_run_config

        cfg = load_run_config(train.path)
        model_cfg, size = cfg.model, _image_size(cfg.model.img_size, cfg.data.crop)
    elif ckpt is not None:
        from repsep.engine.checkpoint import load_model

        loaded = load_model(ckpt)
        crop = (loaded.train_config.get("data") or {}).get("crop")
        model_cfg, size = loaded.model_config, _image_size(loaded.model_config.img_size, crop)
    else:
        return
    entry.model_config = dataclasses.asdict(model_cfg)
    if train is not None and (train.path / "model_info.json").is_file():
        info = train.json("model_info.json")
    elif train is None and (loaded.source or {}).get("format") == "hf-transformers":
        from repsep.models.importers.hf_load import hf_model_info

        info = hf_model_info(loaded.model, size or (512, 512))  # measured on the imported model itself
    else:
        from repsep.models.profile import model_info

        info = model_info(model_cfg, size or (512, 512))
    try:
        entry.info = {"params": info["params"]["inference"], "gmacs": info["gmacs"]["total"],
                      "image_size": info["image_size"]}
    except (KeyError, TypeError):
        raise UserError(f"{train.path if train else ckpt}: model_info.json is not `models info --json` output"
                        ) from None
