"""The setups of tests/test_bad_inputs.py: each writes one bad input into the per-test work tree (``p``: the path
table of that test's ``_paths``), named in :data:`SETUPS`."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from evil_payload import Evil
from PIL import Image


def _png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _first_ade(p, kind: str) -> Path:
    folder = p["ade"] / ("images" if kind == "image" else "annotations") / "validation"
    return sorted(folder.iterdir())[0]


def _export_other_arch(p) -> None:
    from repsep.engine.checkpoint import metadata_sha256

    obj = torch.load(p["model"], weights_only=True)
    obj["model_config"]["name"] = obj["model_name"] = "rsseg_vit"
    obj["model_config"]["pathway"] = True
    obj["metadata_sha256"] = metadata_sha256(obj)  # a consistent export of another architecture, not an edit
    torch.save(obj, p["bad"])


def _tamper(p) -> None:
    obj = torch.load(p["model"], weights_only=True)
    key = sorted(obj["state_dict"])[-1]
    obj["state_dict"][key] = obj["state_dict"][key] + 1e-3
    torch.save(obj, p["bad"])


def _evil_torch(p) -> None:
    from repsep.engine.checkpoint import MODEL_FORMAT

    torch.save({"format": MODEL_FORMAT, "state_dict": Evil(p["marker"])}, p["bad"])


def _unfinished_run(p, checkpoint: bytes | None = None):
    """A run folder that train owns (its marker records the files) with an optional checkpoint's bytes."""
    from repsep.ownership import OwnedFolder

    run = OwnedFolder.claim(p["run"], "train")
    run.write_text("metrics.jsonl", '{"event": "start", "iter": 0, "world_size": 1}\n')
    if checkpoint is not None:
        run.write_bytes("checkpoint_last.pt", checkpoint)
    return run


def _finished_run(p) -> None:
    run = _unfinished_run(p)
    run.write_text("DONE", "")
    run.finish()


def _finished(out: Path, kind: str, name: str) -> None:
    """A finished result of ``kind`` (recorded in its ownership marker) holding one file."""
    from repsep.ownership import OwnedFolder

    folder = OwnedFolder.claim(out, kind)
    folder.write_text(name, "x\n")
    folder.finish()


def _read_only(p) -> None:
    p["ro"].mkdir()
    p["ro"].chmod(0o555)


SETUPS: dict[str, Callable[[dict[str, Path]], object]] = {
    "none": lambda p: None,
    "empty_folder": lambda p: p["empty"].mkdir(),
    "empty_split": lambda p: [f.unlink() for f in (p["cs"] / "leftImg8bit" / "val").rglob("*.png")],
    "no_label": lambda p: p["lab0"].unlink(),
    "label_size": lambda p: _png(p["lab0"], np.zeros((32, 48), np.uint8)),
    "label_values": lambda p: _png(p["lab0"], np.full((64, 96), 40, np.uint8)),
    "label_16bit": lambda p: _png(p["lab0"], np.full((64, 96), 300, np.uint16)),
    "label_rgba": lambda p: _png(p["lab0"], np.zeros((64, 96, 4), np.uint8)),
    "label_garbage": lambda p: _garbage(p["lab0"]),
    "label_empty": lambda p: p["lab0"].write_bytes(b""),
    "image_truncated": lambda p: _truncate(p["img0"]),
    "image_garbage": lambda p: _garbage(p["img0"]),
    "image_empty": lambda p: p["img0"].write_bytes(b""),
    "image_16bit": lambda p: _png(p["img0"], np.full((64, 96), 300, np.uint16)),
    "jpeg_truncated": lambda p: _truncate(_first_ade(p, "image")),
    "jpeg_garbage": lambda p: _garbage(_first_ade(p, "image")),
    "ade_label_values": lambda p: _png(_first_ade(p, "label"), np.full((32, 64), 200, np.uint8)),
    "ckpt_empty": lambda p: p["bad"].write_bytes(b""),
    "ckpt_garbage": lambda p: _garbage(p["bad"]),
    "ckpt_truncated": lambda p: p["bad"].write_bytes(p["model"].read_bytes()[: p["model"].stat().st_size // 2]),
    "ckpt_evil_pickle": lambda p: p["bad"].write_bytes(pickle.dumps(Evil(p["marker"]))),
    "ckpt_evil_torch": _evil_torch,
    "ckpt_tampered": _tamper,
    "ckpt_other_arch": _export_other_arch,
    "ckpt_train_state": lambda p: shutil.copy(p["base"] / "state.pt", p["bad"]),
    "yaml_typo": lambda p: p["yaml"].write_text("model:\n  name: baseline_vit\n  size: tiny\noptim:\n  lrr: 0.1\n"),
    "yaml_syntax": lambda p: p["yaml"].write_text("model:\n  name: [baseline_vit\n"),
    "run_finished": _finished_run,
    "run_unfinished": _unfinished_run,
    "run_ckpt_truncated": lambda p: _unfinished_run(p, (p["base"] / "state.pt").read_bytes()[:300]),
    "run_ckpt_evil": lambda p: _unfinished_run(p, pickle.dumps(Evil(p["marker"]))),
    "report_exists": lambda p: _finished(p["out"], "report", "README.md"),
    "eval_done": lambda p: shutil.copytree(p["base"] / "eval", p["out"]),
    "analyze_done": lambda p: _finished(p["out"], "analyze", "summary.md"),
    "read_only": _read_only,
}
