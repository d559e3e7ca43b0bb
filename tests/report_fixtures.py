"""Hand-made train / eval / corrupt / analyze folders for the report tests (files as docs/INTERFACES.md specifies,
with the ``settings`` block of the comparability contract).

Three models share the same per-image unions; the two RSSeg variants gain a fixed number of intersection pixels
per class in every image and cell, so every mIoU difference is a known constant (+5 and +10 points) and the
bootstrap intervals collapse onto it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import yaml

from analysis.bootstrap import miou_from_sums
from analysis.features import SIMILARITY_METRICS
from analysis.run import SEPARATION_METRICS
from corruptions.metrics import robustness_summary

N = 12
UNION = np.array([100, 200, 400])  # per image and class
CELLS = {"gaussian_noise": (1, 2), "shot_noise": (1, 2), "defocus_blur": (1, 2)}
MODELS = {  # name: (pathway, sasm, dca), intersection gain per class (= +5 or +10 mIoU points)
    "vit_base": ((False, False, False), np.array([0, 0, 0])),
    "vit_pathway": ((True, False, False), np.array([5, 10, 20])),
    "rsseg": ((True, True, True), np.array([10, 20, 40])),
}


def weights(name: str) -> bytes:
    """The bytes of model ``name``'s (fake) ``model_final.pt``; its sha256 identifies the model."""
    return f"weights of {name}".encode()


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def settings(name: str, ids=None, *, corrupt: bool = False, scales=(1.0,), flip=False, **changes) -> dict:
    """The ``settings`` block of the contract (COMMON.md) for model ``name``'s result; ``changes`` override keys."""
    ids = [f"img_{i:03d}" for i in range(N)] if ids is None else list(ids)
    block = {"model_sha256": sha(weights(name)), "dataset": "synthcity", "dataset_fingerprint": "0123456789abcdef",
             "split": "val", "image_ids_sha256": sha("\n".join(sorted(ids))), "num_images": len(ids),
             "subset_seed": None, "precision": "fp32",
             "inference": {"mode": "whole", "crop": None, "stride": None, "scales": list(scales), "flip": flip}}
    if corrupt:
        block.update(base_seed=0, severities=[1, 2], corruptions=list(CELLS), backend="reference",
                     cell_backends={f"{c}/{s}": "reference" for c, sev in CELLS.items() for s in sev})
    block.update(changes)
    return block


def areas(gain: np.ndarray, drop: float, rng_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-image (intersect, union) [N, 3]: a shared base fraction of the union, minus ``drop``, plus ``gain``."""
    frac = np.random.default_rng(rng_seed).uniform(0.5, 0.85, size=(N, 3))
    union = np.tile(UNION, (N, 1))
    return (np.floor(frac * (1 - drop) * union) + gain).astype(np.int64), union


def miou(intersect: np.ndarray, union: np.ndarray) -> float:
    return float(miou_from_sums(intersect.sum(0), union.sum(0)))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def manifest(folder: Path, kind: str, inputs: dict) -> None:
    write(folder / "manifest.json", json.dumps({"kind": kind, "command": f"repsep-bench {kind} --out {folder.name}",
                                                 "config_hash": "abc", "git_commit": "0" * 40, "inputs": inputs}))


RUNGS = {  # (pathway, sasm, dca) -> the model config of the ladder rung (repsep.models.registry.LADDER)
    (False, False, False): {"name": "baseline_vit"},  # baseline (no RSSeg parts)
    (True, False, False): {"name": "rsseg_vit", "sasm": False, "dca": False, "aux_head": True},  # +discrepancy
    (True, True, True): {"name": "rsseg_vit"},  # +DCA
}


def make_train(root: Path, name: str, switches: tuple[bool, bool, bool], seed: int = 0) -> Path:
    folder = root / name
    model = {"backbone": "vit_tiny_patch16_384", **RUNGS[switches]}
    write(folder / "config.yaml", yaml.safe_dump({"model": model, "seed": seed, "schedule": {"iters": 1000}}))
    # val mIoU 30 at iteration 800, then 30 + 0.5 x (number of switches on) at 1000; iteration 1000 is logged
    # twice (a resumed run) and the last line wins
    final = 30 + 0.5 * sum(switches)
    lines = [{"event": "start", "iter": 0}, {"iter": 20, "loss": 2.0}, {"event": "val", "iter": 400, "mIoU": 20.0},
             {"event": "val", "iter": 800, "mIoU": 30.0}, {"event": "val", "iter": 1000, "mIoU": 99.0},
             {"event": "val", "iter": 1000, "mIoU": final}]
    write(folder / "metrics.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    write(folder / "model_info.json", json.dumps({"params": {"inference": 5_000_000 + 100_000 * sum(switches)},
                                                   "gmacs": {"total": 1.5}, "image_size": [64, 128]}))
    (folder / "model_final.pt").write_bytes(weights(name))
    write(folder / "DONE", "")
    manifest(folder, "train", {"dataset": "synthcity"})
    return folder


def make_eval(root: Path, name: str, gain: np.ndarray, *, scales=(1.0,), flip=False, ids=None,
              folder: Path | None = None, **changes) -> Path:
    """An eval folder of model ``name``; ``changes`` go into its settings block (``settings=None``: none)."""
    folder = folder or root / f"eval_{name}{'_ms' if flip else ''}"
    inter, union = areas(gain, 0.0)
    value = miou(inter, union) + (1.0 if flip else 0.0)
    write(folder / "metrics.json", json.dumps({"mIoU": value, "aAcc": 90.0, "mAcc": 80.0, "model": name,
                                                "dataset": "synthcity", "mode": "whole", "scales": list(scales),
                                                "flip": flip, "num_images": N, "per_class": {},
                                                **_settings(name, ids, changes, scales=scales, flip=flip)}))
    ids = np.array(ids if ids is not None else [f"img_{i:03d}" for i in range(N)], dtype=str)
    np.savez(folder / "per_image.npz", ids=ids, intersect=inter, union=union, pred_area=union, label_area=union)
    manifest(folder, "eval", {"model": f"runs/{name}/model_final.pt"})
    return folder


def _settings(name: str, ids, changes: dict, **kwargs) -> dict:
    if "settings" in changes:
        return {} if changes["settings"] is None else {"settings": changes["settings"]}
    return {"settings": settings(name, ids, **kwargs, **changes)}


def make_corrupt(root: Path, name: str, gain: np.ndarray, order: np.ndarray | None = None, *,
                 folder: Path | None = None, **changes) -> Path:
    """A corrupt folder of model ``name``; ``changes`` go into its settings block (``settings=None``: none)."""
    folder = folder or root / f"corrupt_{name}"
    order = np.arange(N) if order is None else order  # image order in the file (matched by id on read)
    arrays = {"ids": np.array([f"img_{i:03d}" for i in range(N)], dtype=str)[order]}
    arrays["clean/intersect"], arrays["clean/union"] = (a[order] for a in areas(gain, 0.0))
    cells = {}
    for k, (corruption, severities) in enumerate(CELLS.items()):
        cells[corruption] = {}
        for s in severities:
            inter, union = areas(gain, 0.1 * s + 0.05 * k)
            arrays[f"{corruption}/{s}/intersect"], arrays[f"{corruption}/{s}/union"] = inter[order], union[order]
            cells[corruption][s] = miou(inter, union)
    result = robustness_summary(miou(*areas(gain, 0.0)), cells, list(CELLS), (1, 2))
    result.update(_settings(name, None, changes, corrupt=True))
    write(folder / "robustness.json", json.dumps(result))
    np.savez(folder / "per_image.npz", **arrays)
    manifest(folder, "corrupt", {"model": f"runs/{name}/model_final.pt", "model_sha256": "f" * 64})
    return folder


def make_analyze(root: Path, names: list[str]) -> Path:
    """An analyze folder comparing ``names``: model ``k`` has abs_cos 0.5 + 0.1 k and ratio 2 + k at every layer."""
    folder = root / "analyze"
    layers = ("vit.block1", "decoder_input")
    layer_settings = {"summary_layer": "decoder_input", "layers": list(layers)}
    sim = {n: {lay: {"grid": [4, 8], **{m: {"mean": (0.5 + 0.1 * k if m == "abs_cos" else 0.25), "std": 0.0,
                                           "num_images": N} for m in SIMILARITY_METRICS}} for lay in layers}
           for k, n in enumerate(names)}
    sep = {n: {lay: {m: (2.0 + k if m == "ratio" else 12 if m.startswith("num_") else 1.0) for m in SEPARATION_METRICS}
               for lay in layers} for k, n in enumerate(names)}
    analysis_settings = {**settings("vit_base"), "model_sha256": [sha(weights(n)) for n in names], **layer_settings}
    write(folder / "similarity.json", json.dumps({"settings": analysis_settings, "models": sim}))
    write(folder / "separation.json", json.dumps({"settings": analysis_settings, "models": sep}))
    write(folder / "similarity.csv", "model,layer,abs_cos\n" + "".join(
        f"{n},{lay},{sim[n][lay]['abs_cos']['mean']}\n" for n in names for lay in layers))
    write(folder / "separation.csv", "model,layer,ratio\n" + "".join(
        f"{n},{lay},{sep[n][lay]['ratio']}\n" for n in names for lay in layers))
    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "similarity_depth.png").write_bytes(b"\x89PNG not really")
    write(folder / "figures" / "similarity_depth.txt", "Feature similarity against depth.")
    manifest(folder, "analyze", {"checkpoints": {n: {"path": f"runs/{n}/model_final.pt", "sha256": "0"}
                                                  for n in names}, "data": "synthcity"})
    return folder


def make_runs(tmp_path: Path) -> list[Path]:
    """Train, eval and corrupt folders of the three models, a multi-scale eval of rsseg and an analyze folder."""
    root = tmp_path / "runs"
    folders = []
    for name, (switches, gain) in MODELS.items():
        folders += [make_train(root, name, switches), make_eval(tmp_path, name, gain),
                    make_corrupt(tmp_path, name, gain)]
    folders += [make_eval(tmp_path, "rsseg", MODELS["rsseg"][1], scales=(0.5, 1.0, 1.5), flip=True),
                make_analyze(tmp_path, ["vit_base", "rsseg"])]
    return folders
