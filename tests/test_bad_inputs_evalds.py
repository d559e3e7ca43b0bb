"""``eval`` against bad inputs and unsafe output folders (issues 18 and 22): one stderr line naming the file or
option, exit code 2, and no file created, changed or removed; plus the settings block, subsets and the start line.

Each row is (id, extra eval arguments, setup, expected fragment). Placeholders in braces are paths of the per-test
work tree (see :func:`work`)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from corruption_fixtures import IDS, make_tiny_model
from PIL import Image

CITY_LAB = "gtFine/val/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A 3-image Cityscapes folder (aachen x2, bremen x1, 64x96) and a tiny export in a run folder."""
    root = tmp_path_factory.mktemp("evalds")
    model = make_tiny_model(root)
    (root / "run").mkdir()
    shutil.move(model, root / "run" / "model_final.pt")
    return root


@pytest.fixture
def work(base, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copytree(base / "cs", ws / "cs")
    shutil.copytree(base / "run", ws / "run")
    monkeypatch.setenv("HOME", str(ws / "home"))
    (ws / "home").mkdir()
    return {"ws": ws, "cs": ws / "cs", "run": ws / "run", "model": ws / "run" / "model_final.pt", "out": ws / "out",
            "pred": ws / "pred", "lab0": ws / "cs" / CITY_LAB, "home": ws / "home"}


def _eval_args(p, *extra: str, out: bool = True) -> list[str]:
    return ["eval", "--model", str(p["model"]), "--data", f"cityscapes:{p['cs']}", "--workers", "0",
            *(["--out", str(p["out"])] if out and "--out" not in extra else []), *extra]


def _snapshot(root: Path) -> dict[str, tuple]:
    return {str(q): ("dir",) if q.is_dir() else (hashlib.sha256(q.read_bytes()).hexdigest(), q.stat().st_mtime_ns)
            for q in sorted(root.rglob("*"))}


def _marker(folder: Path, kind: str, finished: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".repsep-bench.json").write_text(json.dumps({"kind": kind, "finished": finished, "files": {}}))


def _finished_eval_with_note(p) -> None:
    assert run_cli(_eval_args(p)) == 0
    (p["out"] / "notes.txt").write_text("mine")


SETUPS = {
    "none": lambda p: None,
    "foreign": lambda p: (p["out"].mkdir(), (p["out"] / "notes.txt").write_text("mine")),
    "finished_foreign": _finished_eval_with_note,
    "corrupt_result": lambda p: _marker(p["out"], "corrupt"),
    "all_ignore": lambda p: [Image.fromarray(np.full((64, 96), 255, np.uint8)).save(f)
                             for f in (p["cs"] / "gtFine").rglob("*.png")],
}

ROWS = [
    ("out-foreign-file", [], "foreign", "--out {out}: holds notes.txt, which repsep-bench eval did not write"),
    ("out-overwrite-foreign", ["--overwrite"], "finished_foreign",
     "--out {out}: holds notes.txt, which repsep-bench eval did not write"),
    ("out-other-kind", [], "corrupt_result", "--out {out}: holds a repsep-bench corrupt result, not eval"),
    ("out-root", ["--out", "/"], "none", "--out /: refusing to write into the file system root"),
    ("out-home", ["--out", "{home}"], "none", "--out {home}: refusing to write into the home folder"),
    ("out-dataset-root", ["--out", "{cs}"], "none", "--out {cs}: is a dataset root"),
    ("out-model-folder", ["--out", "{run}"], "none", "--out {run}: is an input of this command"),
    ("pred-into-labels", ["--save-pred", "{cs}/gtFine/val/aachen"], "none",
     "--save-pred {cs}/gtFine/val/aachen: holds aachen_000000_000019_gtFine_labelTrainIds.png, which repsep-bench "
     "predictions did not write"),
    ("pred-dataset-root", ["--save-pred", "{cs}"], "none", "--save-pred {cs}: is a dataset root"),
    ("pred-is-out", ["--save-pred", "{out}"], "none", "--save-pred {out}: is an input of this command"),
    ("out-name-too-long", ["--out", "{ws}/" + "x" * 300], "none", "cannot use this path (File name too long)"),
    ("pred-name-too-long", ["--save-pred", "{ws}/" + "p" * 300], "none",
     "--save-pred {ws}/ppp"),
    ("num-images-0", ["--num-images", "0"], "none", "--num-images 0: must be at least 1"),
    ("subset-seed-negative", ["--subset-seed", "-1"], "none", "--subset-seed: -1 is not in the range 0..4294967295"),
    ("scan-unknown", ["--scan", "fast"], "none", "--scan fast: choose one of full, headers"),
    ("crop-0x0", ["--crop", "0x0"], "none", "--crop 0x0: each side must be between 16 and 16384 pixels"),
    ("crop-0x0-slide", ["--mode", "slide", "--crop", "0x0"], "none",
     "--crop 0x0: each side must be between 16 and 16384 pixels"),
    ("stride-0x16", ["--mode", "slide", "--crop", "32x32", "--stride", "0x16"], "none",
     "--stride 0x16: each side must be between 1 and 16384 pixels"),
    ("scales-tiny", ["--scales", "0.001"], "none",
     "--scales 0.001: factors must be finite numbers between 0.0625 and 16"),
    ("scales-nan", ["--scales", "nan"], "none", "--scales nan: factors must be finite"),
    ("all-ignore", [], "all_ignore", "no labelled pixel in the 3 images checked (every label is ignore)"),
]


@pytest.mark.parametrize("name, extra, setup, fragment", ROWS, ids=[r[0] for r in ROWS])
def test_eval_bad_input(work, capsys, name, extra, setup, fragment):
    SETUPS[setup](work)
    fmt = {k: str(v) for k, v in work.items()}
    extra, fragment = [a.format(**fmt) for a in extra], fragment.format(**fmt)
    before = _snapshot(work["ws"])
    capsys.readouterr()
    assert run_cli(_eval_args(work, *extra)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert _snapshot(work["ws"]) == before


def test_all_ignore_with_header_scan_is_one_line(work, capsys):
    SETUPS["all_ignore"](work)
    assert run_cli(_eval_args(work, "--scan", "headers")) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: cityscapes:{work['cs']} [val]: no labelled pixel in the 3 images evaluated (every label "
                   "is ignore); mIoU would be undefined")
    assert not (work["out"] / "metrics.json").exists()


def test_label_folder_is_unchanged_by_a_refused_save_pred(work, capsys):
    before = work["lab0"].read_bytes()
    assert run_cli(_eval_args(work, "--save-pred", str(work["lab0"].parent))) == 2
    assert work["lab0"].read_bytes() == before
    assert sorted(p.name for p in work["lab0"].parent.iterdir()) == ["aachen_000000_000019_gtFine_labelTrainIds.png",
                                                                     "aachen_000001_000019_gtFine_labelTrainIds.png"]


def test_default_out_settings_block_and_start_line(work, capsys):
    from repsep.data import open_dataset
    from repsep.manifest import sha256_file

    assert run_cli(_eval_args(work, out=False)) == 0
    printed = capsys.readouterr().out
    sha = sha256_file(work["model"])
    device, precision = ("cuda:0", "bf16") if torch.cuda.is_available() else ("cpu", "fp32")
    assert printed.splitlines()[0] == (f"eval: {work['model']} (baseline_vit, sha256 {sha[:12]}) on "
                                       f"cityscapes:{work['cs']} [val]: 3 images, batch 1, whole, precision "
                                       f"{precision}, device {device}")
    out = work["run"] / "eval"
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    dataset = open_dataset(f"cityscapes:{work['cs']}", "val")
    assert settings == {
        "model_sha256": sha, "dataset": f"cityscapes:{work['cs']}", "dataset_fingerprint": dataset.fingerprint(),
        "split": "val", "image_ids_sha256": hashlib.sha256("\n".join(sorted(IDS)).encode()).hexdigest(),
        "num_images": 3, "subset_seed": None, "precision": "fp32",
        "inference": {"mode": "whole", "crop": None, "stride": None, "scales": [1.0], "flip": False}}
    assert json.loads((out / "manifest.json").read_text())["settings"] == settings
    marker = json.loads((out / ".repsep-bench.json").read_text())
    assert marker["kind"] == "eval" and marker["finished"]
    assert sorted(marker["files"]) == ["manifest.json", "metrics.json", "metrics.md", "per_class.csv",
                                       "per_image.npz"]
    # a second run needs --overwrite, which replaces the result
    assert run_cli(_eval_args(work, out=False)) == 2
    assert f"--out {out}: already holds a finished eval result" in capsys.readouterr().err
    assert run_cli(_eval_args(work, "--overwrite", out=False)) == 0


def test_num_images_is_a_spread_subset_and_a_clamp_is_said(work, capsys):
    assert run_cli(_eval_args(work, "--num-images", "2")) == 0
    metrics = json.loads((work["out"] / "metrics.json").read_text())
    ids = list(np.load(work["out"] / "per_image.npz")["ids"])
    # aachen has 2 of 3 images, bremen 1: two images are one of each (the first two would both be aachen)
    assert [i.split("_")[0] for i in ids] == ["aachen", "bremen"]
    assert metrics["num_images"] == 2 and metrics["settings"]["subset_seed"] == 0
    assert metrics["settings"]["image_ids_sha256"] == hashlib.sha256("\n".join(ids).encode()).hexdigest()
    capsys.readouterr()
    assert run_cli(_eval_args(work, "--num-images", "100", "--out", str(work["ws"] / "all"))) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "--num-images" in line]
    assert notes == [f"note: --num-images 100 is more than the 3 images of cityscapes:{work['cs']} [val]; "
                     "evaluating all 3"]
    assert json.loads((work["ws"] / "all" / "metrics.json").read_text())["settings"]["subset_seed"] is None


def test_save_pred_into_own_finished_predictions_needs_overwrite(work, capsys):
    assert run_cli(_eval_args(work, "--save-pred", str(work["pred"]))) == 0
    assert len(list(work["pred"].glob("*.png"))) == 6
    shutil.rmtree(work["out"])
    assert run_cli(_eval_args(work, "--save-pred", str(work["pred"]))) == 2
    assert run_cli(_eval_args(work, "--save-pred", str(work["pred"]), "--overwrite", "--num-images", "1")) == 0
    marker = json.loads((work["pred"] / ".repsep-bench.json").read_text())
    assert marker["kind"] == "predictions" and len(marker["files"]) == 2
    assert sorted(p.name for p in work["pred"].glob("*.png")) == sorted(marker["files"])


# ---- data check ----------------------------------------------------------------------------------------------------

DATA_ROWS = [
    ("check-layout", ["data", "check", "{cs}", "--layout", "kitti"], "none", "--layout kitti: choose cityscapes or"),
    ("check-layout-mismatch", ["data", "check", "{cs}", "--layout", "ade20k"], "none",
     "{cs}/images/validation: ADE20K val images folder not found"),
    ("check-json-inside-dataset", ["data", "check", "{cs}", "--json", "{cs}/gtFine/h.json"], "none",
     "--json {cs}/gtFine/h.json: is inside the dataset root {cs}"),
    ("check-json-foreign-file", ["data", "check", "{cs}", "--json", "{ws}/thesis.json"], "thesis",
     "--json {ws}/thesis.json: exists and was not written by repsep-bench data check"),
    ("check-json-folder", ["data", "check", "{cs}", "--json", "{home}"], "none", "--json {home}: is a folder"),
]
SETUPS["thesis"] = lambda p: (p["ws"] / "thesis.json").write_text('{"chapter": 1}')


@pytest.mark.parametrize("name, argv, setup, fragment", DATA_ROWS, ids=[r[0] for r in DATA_ROWS])
def test_data_check_bad_input(work, capsys, name, argv, setup, fragment):
    SETUPS[setup](work)
    fmt = {k: str(v) for k, v in work.items()}
    argv, fragment = [a.format(**fmt) for a in argv], fragment.format(**fmt)
    before = _snapshot(work["ws"])
    capsys.readouterr()
    assert run_cli(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert _snapshot(work["ws"]) == before


def test_data_check_json_replaces_its_own_histogram(work, capsys):
    target = work["ws"] / "h.json"
    assert run_cli(["data", "check", str(work["cs"]), "--json", str(target)]) == 0
    assert run_cli(["data", "check", str(work["cs"]), "--json", str(target)]) == 0
    assert json.loads(target.read_text())["num_images"] == 3
