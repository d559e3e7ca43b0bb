"""The measurements of ``scripts/gpu_check.py``, one function per part; each returns a JSON-ready dict.

Every part takes a :class:`Profile` (the sizes) and a work folder. Any failure raises: the driver stops, writes
what it has and exits non-zero. Rates are per second of wall-clock time, memory in MiB (CUDA's peak allocated,
None on the CPU), times in seconds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))


@dataclass(frozen=True)
class Profile:
    """Every size of one gpu_check run (see the budget in ``scripts/gpu_check.sh``)."""

    name: str
    device: str
    synth_size: str
    synth_train: int
    synth_val: int
    workers: int
    corrupt_images: int
    corrupt_size: str
    corrupt_corruptions: str | None  # None: --suite all (19)
    sweep_corruptions: tuple[str, ...]
    sweep_severities: tuple[int, ...]
    sweep_images: int
    model_names: tuple[str, ...]
    model_fp32_names: tuple[str, ...]
    model_sizes: tuple[str, ...]
    model_hw: tuple[int, int]
    model_batch: int
    model_warmup: int
    model_iters: int
    compile_plan: tuple[tuple[str, str, str], ...]  # (model, ViT size, pass), in priority order
    compile_budget_s: float
    compile_backend: str
    train_iters: int
    train_log: int
    train_overrides: tuple[str, ...]
    dist_backend: str
    dist_images: int


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def run_checked(argv: list[str], what: str, env: dict[str, str] | None = None) -> float:
    """Run ``argv`` (output passed through); its wall seconds. A non-zero exit raises naming ``what``."""
    start = time.perf_counter()
    print(f"gpu_check: {what}: {' '.join(argv)}", flush=True)
    proc = subprocess.run(argv, cwd=ROOT, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed with exit code {proc.returncode}: {' '.join(argv)}")
    return time.perf_counter() - start


def synth_data(p: Profile, work: Path) -> dict[str, Any]:
    """``data synth`` at the profile's size (the images of the train smoke, the sweep and the torchrun eval)."""
    out = work / "synth"
    seconds = run_checked([sys.executable, "-m", "repsep.cli", "data", "synth", "--out", str(out), "--num-train",
                           str(p.synth_train), "--num-val", str(p.synth_val), "--size", p.synth_size,
                           "--workers", str(max(1, p.workers))], "data synth")
    return {"path": str(out), "size": p.synth_size, "train": p.synth_train, "val": p.synth_val, "seconds": seconds}


def corruptions(p: Profile, work: Path) -> dict[str, Any]:
    """``scripts/bench_corruptions.py``: reference vs torch on the device, per corruption, and suite ratios."""
    from corruptions.suite import SUITES

    dev = p.device.split(":")[0]
    out = work / "corruptions.json"
    argv = [sys.executable, str(SCRIPTS / "bench_corruptions.py"), "--severities", "3", "--images",
            str(p.corrupt_images), "--size", p.corrupt_size, "--devices", dev, "--json", str(out)]
    argv += ["--corruptions", p.corrupt_corruptions] if p.corrupt_corruptions else ["--suite", "all"]
    seconds = run_checked(argv, "bench_corruptions")
    data = json.loads(out.read_text())
    key = f"torch_{dev}"
    rows = [{"corruption": r["corruption"], "severity": r["severity"], "backend": r["backend"],
             "reference_s": r["reference"], "torch_s": r[key], "ratio": r["reference"] / r[key]}
            for r in data["rows"]]
    suites = {}
    for scope, names in (("all", [r["corruption"] for r in rows]), ("cityscapes-c", SUITES["cityscapes-c"])):
        chosen = [r for r in rows if r["corruption"] in names]
        if chosen:
            ref, tor = sum(r["reference_s"] for r in chosen), sum(r["torch_s"] for r in chosen)
            suites[scope] = {"corruptions": len(chosen), "reference_s": ref, "torch_s": tor, "ratio": ref / tor}
    return {"device": dev, "size": data["size"], "batch": data["images"], "severity": 3,
            "threads": data.get("threads"), "rows": rows, "suites": suites, "seconds": seconds}


def _train_config(p: Profile, synth: Path):
    from repsep.config import load_config

    sets = ["pretrained=null", f"data.spec=synthcity:{synth}", f"schedule.iters={p.train_iters}",
            "schedule.val_interval=0", f"schedule.ckpt_interval={p.train_iters}",
            f"schedule.log_interval={p.train_log}", f"data.num_workers={p.workers}", *p.train_overrides]
    return load_config("cityscapes_vit_b_rsseg", sets), sets


def train_smoke(p: Profile, work: Path, synth: Path) -> dict[str, Any]:
    """The ViT-B RSSeg recipe (cityscapes_vit_b_rsseg, its crop, amp, optimizer) for ``train_iters`` iterations on
    the generated images: it/s between the first and the last logged iteration (data loading included, start-up
    and the final validation not), peak memory, and every logged loss finite. Leaves ``work/train/model_final.pt``."""
    from repsep.engine import train as train_mod

    cfg, sets = _train_config(p, synth)
    stamps: list[tuple[int, float, float]] = []
    real_append = train_mod.MetricsLog.append

    def append(self, record):  # stamp the loss lines as the loop logs them (the loss was synced to the CPU)
        if "loss" in record:
            stamps.append((int(record["iter"]), time.perf_counter(), float(record["loss"])))
        return real_append(self, record)

    device = torch.device(p.device)
    _reset_peak(device)
    train_mod.MetricsLog.append = append
    start = time.perf_counter()
    try:
        result = train_mod.train(cfg, work / "train", progress=False)
    finally:
        train_mod.MetricsLog.append = real_append
    seconds = time.perf_counter() - start
    if len(stamps) < 2:
        raise RuntimeError(f"train smoke: only {len(stamps)} loss lines logged; need 2 to time iterations")
    (i0, t0, _), (i1, t1, _) = stamps[0], stamps[-1]
    losses = [s[2] for s in stamps]
    if not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"train smoke: non-finite loss logged: {losses}")
    return {"recipe": "cityscapes_vit_b_rsseg", "overrides": sets, "crop": list(cfg.data.crop),
            "batch": cfg.data.batch_size, "amp": cfg.amp, "iters": p.train_iters, "timed_iters": [i0, i1],
            "it_per_s": (i1 - i0) / (t1 - t0), "peak_mib": _peak_mib(device), "first_loss": losses[0],
            "last_loss": losses[-1], "loss_finite": True, "val_mIoU": (result.get("val") or {}).get("mIoU"),
            "seconds": seconds, "model": str(work / "train" / "model_final.pt")}


def sweep(p: Profile, work: Path, model: Path) -> dict[str, Any]:
    """``corrupt`` with the torch backend on the model's device (``--corrupt-on model``) against the model-only
    time of the same forward passes (``scripts/bench_sweep.py``'s measure); both at the default precision."""
    from bench_sweep import model_only_seconds

    from corruptions.evaluate import SweepConfig, run_sweep

    device = torch.device(p.device)
    cells = 1 + len(p.sweep_corruptions) * len(p.sweep_severities)
    model_s = model_only_seconds(str(model), p.sweep_images, cells, device)
    cfg = SweepConfig(model=str(model), corruptions=p.sweep_corruptions, severities=p.sweep_severities,
                      backend="torch", num_images=p.sweep_images, workers=p.workers, corrupt_on="model", scan="headers")
    start = time.perf_counter()
    result = run_sweep(cfg, work / "sweep", progress=False)
    wall = time.perf_counter() - start
    s = result["settings"]
    return {"images": s["num_images"], "cells": cells, "backend": "torch", "corrupt_on": result["corrupt_on"],
            "precision": s["precision"], "cell_backends": s["cell_backends"], "sweep_s": wall, "model_only_s": model_s,
            "ratio": wall / model_s, "clean_mIoU": result["clean"], "mPC": result["mPC"]}


def torchrun_eval(p: Profile, work: Path, model: Path) -> dict[str, Any]:
    """``eval`` launched by ``torchrun --standalone --nproc-per-node 1`` inside a process group of
    ``dist_backend`` (NCCL on the GPU; ``scripts/gpu_check_dist.py`` joins it and checks an all-reduce first)."""
    out = work / "eval_torchrun"
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
            str(SCRIPTS / "gpu_check_dist.py"), p.dist_backend, str(work / "dist_probe.json"), "eval", "--model",
            str(model), "--out", str(out), "--num-images", str(p.dist_images), "--workers", str(p.workers),
            "--scan", "headers"]
    seconds = run_checked(argv, "torchrun eval")
    metrics = json.loads((out / "metrics.json").read_text())
    probe = json.loads((work / "dist_probe.json").read_text())
    return {"backend": probe["backend"], "world_size": probe["world_size"], "all_reduce": probe["all_reduce"],
            "images": metrics["num_images"], "mIoU": metrics["mIoU"], "precision": metrics["settings"]["precision"],
            "seconds": seconds}


def _model_rows(p: Profile, name: str, size: str, device: torch.device) -> list[dict[str, Any]]:
    from bench_model import build, time_steps

    model = build(name, size, p.model_hw, device)
    dtypes = ("fp32", "bf16") if name in p.model_fp32_names else ("bf16",)
    rows = []
    for train in (True, False):  # training rows first: deploy() then drops the aux heads for inference
        model = model.train() if train else model.deploy().eval()
        for dtype in dtypes:
            _reset_peak(device)
            row = time_steps(model, p.model_hw, p.model_batch, device, "eager", dtype, False, train,
                             p.model_warmup, p.model_iters)
            rows.append({"model": name, "size": size, **row, "peak_mib": _peak_mib(device)})
            print(f"gpu_check: model {name} {size} {row['pass']} eager {dtype}: {row['images_per_s']:.2f} img/s",
                  flush=True)
    del model
    return rows


def models(p: Profile, work: Path) -> dict[str, Any]:
    """``scripts/bench_model.py``'s measure: eager rows for every model and ViT size (bf16; fp32 too for
    ``model_fp32_names``), then ``torch.compile`` rows of ``compile_plan`` (bf16) until ``compile_budget_s`` is
    spent (the rest are listed as skipped)."""
    from bench_model import build, time_steps

    device = torch.device(p.device)
    rows = [r for size in p.model_sizes for name in p.model_names for r in _model_rows(p, name, size, device)]
    compiled, skipped = [], []
    start = time.perf_counter()
    for name, size, pass_ in p.compile_plan:
        if time.perf_counter() - start > p.compile_budget_s:
            skipped.append(f"{name} {size} {pass_}")
            continue
        train = pass_ == "fwd+bwd"
        model = build(name, size, p.model_hw, device)
        model = model.train() if train else model.deploy().eval()
        _reset_peak(device)
        row = time_steps(model, p.model_hw, p.model_batch, device, "compile", "bf16", False, train, p.model_warmup,
                         p.model_iters, compile_backend=p.compile_backend)
        eager = next(r for r in rows if (r["model"], r["size"], r["pass"], r["dtype"]) == (name, size, pass_, "bf16"))
        compiled.append({"model": name, "size": size, **row, "peak_mib": _peak_mib(device),
                         "speedup_vs_eager": row["images_per_s"] / eager["images_per_s"]})
        print(f"gpu_check: model {name} {size} {pass_} compile bf16: {row['images_per_s']:.2f} img/s "
              f"(compile {row['warmup_s']:.0f} s)", flush=True)
        del model
        torch._dynamo.reset()
    return {"device": str(device), "input": list(p.model_hw), "batch": p.model_batch, "iters": p.model_iters,
            "compile_backend": p.compile_backend, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "rows": rows + compiled, "compile_skipped": skipped}
