"""Predictions of a tiny model written to PNGs by a small "external" script, in `score`'s layout, beside the same
model's in-process sweep over the same materialized set (for tests/test_score.py and the bad-input rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from cli_helpers import run_cli
from corruption_fixtures import make_tiny_model
from PIL import Image

CELLS = ("clean", "fog/1", "contrast/1")
SWEEP = ["--corruptions", "fog,contrast", "--severities", "1"]


def write_predictions(model_path: Path, dataset_root: Path, tree: Path, pred: Path) -> None:
    """The external tool: for every image, its clean file and its materialized copies -> argmax PNGs of train ids
    under ``pred/<cell>/<path relative to the dataset root>``."""
    from repsep.data.transforms import normalize
    from repsep.engine.checkpoint import load_model

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where the in-process sweep runs
    net = load_model(model_path, map_location=device).model.eval()
    for clean in sorted((dataset_root / "leftImg8bit").rglob("*.png")):
        rel = clean.relative_to(dataset_root)
        for cell in CELLS:
            source = clean if cell == "clean" else tree / cell / rel
            image = np.array(Image.open(source).convert("RGB"))
            x = normalize(torch.from_numpy(image).permute(2, 0, 1).contiguous())[None]
            with torch.no_grad():
                ids = net(x.to(device)).argmax(1)[0].cpu().numpy().astype(np.uint8)
            target = pred / cell / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(ids).save(target)


def make_scored_setup(tmp: Path) -> dict[str, Path | str]:
    """A tiny model, its 3-image Cityscapes folder, a materialized fog/contrast severity-1 tree, the in-process
    sweep of the model over that tree (``sweep``) and the model's predictions as train-id PNGs (``pred``)."""
    model = make_tiny_model(tmp)
    data = f"cityscapes:{tmp / 'cs'}"
    tree = tmp / "tree"
    assert run_cli(["corruptions", "materialize", "--data", data, *SWEEP, "--out", str(tree)]) == 0
    assert run_cli(["corrupt", "--model", str(model), "--data", data, *SWEEP, "--from-disk", str(tree),
                    "--workers", "0", "--out", str(tmp / "sweep")]) == 0
    write_predictions(model, tmp / "cs", tree, tmp / "pred")
    return {"model": model, "data": data, "tree": tree, "sweep": tmp / "sweep", "pred": tmp / "pred"}


def as_label_ids(pred: Path, out: Path) -> None:
    """The same predictions as Cityscapes label ids (what an official-format tool writes)."""
    from repsep.data.labels import TRAINID_TO_LABELID

    for path in sorted(pred.rglob("*.png")):
        target = out / path.relative_to(pred)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(TRAINID_TO_LABELID[np.asarray(Image.open(path))]).save(target)
