"""scripts/gpu_check.sh (issue 21 item 1): the --cpu-smoke run writes every section with finite numbers and prints
the tables; a bad call fails loudly."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {  # section: fields that must be finite numbers
    "synth": ("seconds",),
    "train": ("it_per_s", "first_loss", "last_loss", "seconds"),
    "sweep": ("sweep_s", "model_only_s", "ratio", "clean_mIoU", "mPC"),
    "torchrun": ("mIoU", "seconds", "all_reduce"),
    "models": ("batch",),
    "corruptions": ("seconds",),
}


def _gpu_check(out: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(out), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
def test_cpu_smoke_writes_every_section_with_finite_numbers(tmp_path):
    proc = _gpu_check(tmp_path / "out", "--cpu-smoke")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert data["profile"] == "cpu-smoke" and "failed" not in data
    for section, fields in SECTIONS.items():
        assert section in data, section
        assert all(_finite(data[section][f]) for f in fields), (section, data[section])
        assert _finite(data["timing"][section]) and data["timing"][section] > 0
    assert all(math.isfinite(v) for v in _numbers(data))  # NaN / inf would be null or refused by strict JSON
    assert data["train"]["loss_finite"] is True and data["train"]["recipe"] == "cityscapes_vit_b_rsseg"
    assert data["torchrun"]["backend"] == "gloo" and data["torchrun"]["all_reduce"] == 1.0
    rows = data["models"]["rows"]
    assert {(r["mode"], r["dtype"]) for r in rows} >= {("eager", "fp32"), ("eager", "bf16"), ("compile", "bf16")}
    assert {r["pass"] for r in rows} == {"fwd", "fwd+bwd"}
    assert all(_finite(r["images_per_s"]) and r["images_per_s"] > 0 for r in rows)
    corr = data["corruptions"]
    assert corr["rows"] and all(_finite(r["ratio"]) for r in corr["rows"])
    assert _finite(corr["suites"]["all"]["ratio"])
    assert data["sweep"]["corrupt_on"] == "model" and data["sweep"]["precision"] == "fp32"
    md = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "## Train smoke" in md and "## Corruptions" in md
    assert "## Time per part (s)" in proc.stdout.split("gpu_check: === corruptions ===")[-1]  # printed at the end


def test_bad_calls_fail_loudly(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "usage: bash scripts/gpu_check.sh OUTDIR [--cpu-smoke]" in proc.stderr
    if not torch.cuda.is_available():  # the GPU profile on a CPU machine stops before measuring anything
        proc = _gpu_check(tmp_path / "gpu", timeout=300)
        assert proc.returncode == 1 and "no CUDA device" in proc.stderr
        assert not (tmp_path / "gpu" / "gpu_check.json").exists()
    mine = tmp_path / "mine"  # a folder holding someone else's file is refused before anything runs
    mine.mkdir()
    (mine / "gpu_check.json").write_text("my notes")
    proc = _gpu_check(mine, "--cpu-smoke", timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: OUTDIR {mine}: holds gpu_check.json, which repsep-bench gpu_check did not write; choose an empty "
        "or new folder"]
    assert (mine / "gpu_check.json").read_text() == "my notes"
    out = tmp_path / "out"  # a scratch folder inside OUTDIR would make OUTDIR foreign to the next run: refused
    proc = _gpu_check(out, "--cpu-smoke", "--work", str(out / "scratch"), timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: --work {out / 'scratch'}: lies inside OUTDIR {out}, which holds only the check's own two files; "
        "choose a scratch folder outside it"]
    assert not out.exists()
