"""`repsep-bench corrupt` and `corruptions materialize|list` end to end on a tiny model and a 3-image dataset."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import run_cli
from corruption_fixtures import IDS, make_tiny_model

import repsep.engine.inference as inference
from repsep.io import read_json

ARGS = ["--corruptions", "fog,contrast", "--severities", "1,3", "--num-images", "2"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corrupt")
    make_tiny_model(tmp)
    return tmp, ["corrupt", "--model", str(tmp / "model.pt"), *ARGS]


def _outputs(out) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("robustness.json", "robustness.csv", "robustness.md",
                                                         "per_image.npz")}


@pytest.fixture(scope="module")
def full_run(setup):
    tmp, argv = setup
    assert run_cli([*argv, "--out", str(tmp / "full")]) == 0
    return tmp / "full"


def test_outputs_are_consistent(full_run, capsys):
    r = read_json(full_run / "robustness.json")
    assert r["num_images"] == 2 and r["severities"] == [1, 3] and set(r["cells"]) == {"fog", "contrast"}
    assert r["backend_per_cell"] == {"fog": {"1": "reference", "3": "reference"},
                                     "contrast": {"1": "reference", "3": "reference"}}
    cells = [v for per_sev in r["cells"].values() for v in per_sev.values()]
    assert r["mPC"] == pytest.approx(np.mean(cells)) and r["rPC"] == pytest.approx(100 * r["mPC"] / r["clean"])
    assert r["CE"] is None
    npz = np.load(full_run / "per_image.npz")
    assert list(npz["ids"]) == [IDS[0], IDS[2]]  # a seeded subset stratified by city, not the first two (aachen)
    for key, expected in (("clean", r["clean"]), ("fog/3", r["cells"]["fog"]["3"])):
        inter, union = npz[f"{key}/intersect"].sum(0), npz[f"{key}/union"].sum(0)  # [C] summed over images
        with np.errstate(invalid="ignore", divide="ignore"):
            assert 100 * np.nanmean(inter / union) == pytest.approx(expected)
    assert len((full_run / "robustness.csv").read_text().splitlines()) == 1 + 1 + 4  # header, clean, cells
    assert sorted(p.name for p in (full_run / "cells").iterdir()) == sorted(
        ["clean.pt", "fog-1.pt", "fog-3.pt", "contrast-1.pt", "contrast-3.pt"])


def test_interrupted_sweep_resumes_to_same_results(setup, full_run, monkeypatch):
    tmp, argv = setup
    out = tmp / "resumed"
    real, calls = inference.evaluate_dataset, []

    def dying(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "evaluate_dataset", dying)
    assert run_cli([*argv, "--out", str(out)]) == 130  # Ctrl-C during the fourth cell
    assert len(list((out / "cells").iterdir())) == 3 and not (out / "robustness.json").exists()
    calls.clear()
    assert run_cli([*argv, "--out", str(out)]) == 0
    assert len(calls) == 2  # only the two unfinished cells were evaluated again
    assert _outputs(out) == _outputs(full_run)


def test_reference_results_self_comparison_is_100_percent(setup, full_run):
    tmp, argv = setup
    out = tmp / "vs_self"
    assert run_cli([*argv, "--out", str(out), "--reference-results", str(full_run)]) == 0
    r = read_json(out / "robustness.json")
    assert r["mCE"] == pytest.approx(100.0) and all(v == pytest.approx(100.0) for v in r["CE"].values())
    assert "mCE" in (out / "robustness.md").read_text()


def test_bad_input_exits_2(setup, full_run, capsys):
    tmp, argv = setup
    assert run_cli([*argv, "--out", str(full_run), "--seed", "1"]) == 2  # cached cells belong to another run
    assert "saved by a different run (differs in base_seed" in capsys.readouterr().err
    assert run_cli([*argv, "--out", str(tmp / "x"), "--corruptions", "fgo"]) == 2
    assert run_cli(["corrupt", "--model", str(tmp / "cs" / "nope.pt"), "--out", str(tmp / "x")]) == 2
    assert run_cli([*argv, "--out", str(tmp / "x"), "--reference-results", str(tmp / "cs")]) == 2


def test_from_disk_equals_on_the_fly(setup, full_run):
    tmp, argv = setup
    root = tmp / "cs"
    assert run_cli(["corruptions", "materialize", "--data", f"cityscapes:{root}", *ARGS[:4], "--out",
                 str(tmp / "mat")]) == 0
    assert run_cli([*argv, "--out", str(tmp / "disk"), "--from-disk", str(tmp / "mat")]) == 0
    on_disk, on_the_fly = read_json(tmp / "disk" / "robustness.json"), read_json(full_run / "robustness.json")
    assert on_disk["cells"] == on_the_fly["cells"] and on_disk["backend_per_cell"]["fog"]["1"].startswith("disk:")


def test_list(capsys):
    assert run_cli(["corruptions", "list"]) == 0
    out = capsys.readouterr().out
    assert "| glass_blur | blur | cityscapes-c, ade20k-c, all | yes |" in out and "all (19)" in out


@pytest.mark.slow
def test_two_process_gloo_equals_one_process(setup, full_run):
    tmp, argv = setup
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29631",
           "-m", "repsep.cli", *argv, "--out", str(tmp / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _outputs(tmp / "ddp") == _outputs(full_run)
