"""`corrupt` and `corruptions materialize` against bad inputs and unsafe output folders: one stderr line, exit 2,
nothing of the user's lost; integrity of what a rerun reads back (cells, trees); disk full; checks before work."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from corruption_fixtures import IDS, make_cityscapes, make_tiny_model
from PIL import Image

import repsep.engine.inference as inference
from repsep.io import read_json
from repsep.ownership import MARKER, OwnedFolder

SWEEP = ["--corruptions", "contrast", "--severities", "1", "--num-images", "1", "--workers", "0"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model over a 3-image Cityscapes folder, and one finished 1-image contrast sweep of it."""
    tmp = tmp_path_factory.mktemp("bad_corrupt")
    make_tiny_model(tmp)
    argv = ["corrupt", "--model", str(tmp / "model.pt"), *SWEEP]
    assert run_cli([*argv, "--out", str(tmp / "done")]) == 0
    return tmp, argv


def _run(argv: list[str], capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = run_cli(argv)
    return code, capsys.readouterr().err.splitlines()


def _one_error(argv: list[str], capsys, fragment: str) -> None:
    code, err = _run(argv, capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--cache-gb", "inf", "--cache-gb: inf is not a finite number"),
    ("--cache-gb", "nan", "--cache-gb: nan is not a finite number"),
    ("--cache-gb", "-1", "--cache-gb: -1.0 is not in the range 0..1000000"),
    ("--corrupt-batch", "0", "--corrupt-batch 0: must be between 1 and 4096"),
    ("--corrupt-batch", "100000", "--corrupt-batch 100000: must be between 1 and 4096"),
    ("--workers", "-1", "--workers: -1 is not in the range 0..2147483647"),
    ("--num-images", "0", "--num-images 0: must be at least 1"),
    ("--seed", "-1", "--seed: -1 is not in the range 0..4294967295"),
    ("--subset-seed", "-3", "--subset-seed: -3 is not in the range 0..4294967295"),
    ("--scan", "quick", "--scan 'quick': choose from: full, headers"),
    ("--scales", "0.001", "--scales 0.001: factors must be finite"),
    ("--mode", "sliding", "--mode sliding: choose one of whole, slide"),
])
def test_bad_option_is_one_line(setup, tmp_path, capsys, option, value, fragment):
    _, argv = setup
    _one_error([*argv, option, value, "--out", str(tmp_path / "out")], capsys, fragment)
    assert not (tmp_path / "out").exists()


def test_protected_and_foreign_output_folders_are_refused(setup, tmp_path, capsys):
    tmp, argv = setup
    _one_error([*argv, "--out", "/"], capsys, "--out /: refusing to write into the file system root")
    _one_error([*argv, "--out", str(Path.home())], capsys, "refusing to write into the home folder")
    _one_error([*argv, "--out", str(tmp / "cs")], capsys, "is a dataset root")
    _one_error([*argv, "--out", str(tmp)], capsys, "is an input of this command")  # the model's own folder
    train = OwnedFolder.claim(tmp_path / "run", "train")  # a training run's folder
    train.write_text("config.yaml", "x: 1\n")
    _one_error([*argv, "--out", str(tmp_path / "run")], capsys, "holds a repsep-bench train result, not corrupt")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("chapter 1")
    _one_error([*argv, "--out", str(mine)], capsys, "holds thesis.tex, which repsep-bench corrupt did not write")
    assert (mine / "thesis.tex").read_text() == "chapter 1" and sorted(os.listdir(mine)) == ["thesis.tex"]
    assert _snapshot(tmp_path / "run") == {"config.yaml": b"x: 1\n", MARKER: (tmp_path / "run" / MARKER).read_bytes()}


def test_out_onto_an_eval_folder_is_refused(setup, tmp_path, capsys):
    tmp, argv = setup
    out = tmp_path / "eval"
    assert run_cli(["eval", "--model", str(tmp / "model.pt"), "--workers", "0", "--out", str(out)]) == 0
    before = _snapshot(out)
    code, err = _run([*argv, "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1 and ("eval result, not corrupt" in err[0] or "did not write" in err[0]), err
    assert _snapshot(out) == before


def test_planted_file_in_a_finished_sweep_is_named(setup, tmp_path, capsys):
    tmp, argv = setup
    out = tmp_path / "sweep"
    shutil.copytree(tmp / "done", out)
    (out / "cells" / "extra.pt").write_bytes(b"mine")
    _one_error([*argv, "--out", str(out)], capsys, "holds cells/extra.pt, which repsep-bench corrupt did not write")
    assert (out / "cells" / "extra.pt").read_bytes() == b"mine"


def test_rerun_same_settings_resumes_other_settings_need_overwrite(setup, tmp_path, capsys, monkeypatch):
    tmp, argv = setup
    out = tmp_path / "sweep"
    shutil.copytree(tmp / "done", out)
    calls = []
    real = inference.evaluate_dataset
    monkeypatch.setattr(inference, "evaluate_dataset", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert run_cli([*argv, "--out", str(out)]) == 0 and calls == []  # finished, same settings: every cell reused
    before = _snapshot(out)
    _one_error([*argv, "--out", str(out), "--seed", "3"], capsys,
               "cells/clean.pt: saved by a different run (differs in base_seed); pass --overwrite")
    _one_error([*argv, "--out", str(out), "--subset-seed", "5"], capsys, "(differs in image_ids_sha256)")
    _one_error([*argv, "--out", str(out), "--flip"], capsys, "(differs in inference)")
    assert _snapshot(out) == before
    assert run_cli([*argv, "--out", str(out), "--seed", "3", "--overwrite"]) == 0 and len(calls) == 2
    settings = read_json(out / "robustness.json")["settings"]
    assert settings["base_seed"] == 3 and read_json(out / MARKER)["finished"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sweep.")]  # the staging folder is gone


def test_hand_edited_cell_is_named(setup, tmp_path, capsys):
    tmp, argv = setup
    out = tmp_path / "sweep"
    shutil.copytree(tmp / "done", out)
    cell = out / "cells" / "contrast-1.pt"
    data = bytearray(cell.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cell.write_bytes(bytes(data))
    _one_error([*argv, "--out", str(out)], capsys,
               f"{cell}: content differs from what repsep-bench corrupt wrote (sha256 mismatch")


def test_settings_block_and_per_file_settings(setup):
    import io
    import json

    import torch

    tmp, _ = setup
    result = read_json(tmp / "done" / "robustness.json")
    s = result["settings"]
    model_sha = __import__("hashlib").sha256((tmp / "model.pt").read_bytes()).hexdigest()
    assert s["model_sha256"] == model_sha and s["split"] == "val" and s["num_images"] == 1
    assert s["subset_seed"] == 0 and s["base_seed"] == 0 and s["precision"] == "fp32"
    assert s["inference"] == {"mode": "whole", "crop": None, "stride": None, "scales": [1.0], "flip": False}
    assert s["corruptions"] == ["contrast"] and s["severities"] == [1] and s["backend"] == "reference"
    assert s["cell_backends"] == {"contrast/1": "reference"} and len(s["dataset_fingerprint"]) == 16
    ids = list(np.load(tmp / "done" / "per_image.npz")["ids"])
    assert s["image_ids_sha256"] == __import__("hashlib").sha256("\n".join(sorted(ids)).encode()).hexdigest()
    assert json.loads(str(np.load(tmp / "done" / "per_image.npz")["settings"][0])) == s
    key = json.loads(torch.load(io.BytesIO((tmp / "done" / "cells" / "contrast-1.pt").read_bytes()),
                                weights_only=True)["key"])
    assert key["model_sha256"] == model_sha and key["backend"] == "reference" and key["precision"] == "fp32"
    assert key["dataset_fingerprint"] == s["dataset_fingerprint"] and key["image_ids_sha256"] == s["image_ids_sha256"]
    marker = read_json(tmp / "done" / MARKER)
    assert marker["kind"] == "corrupt" and marker["finished"] and "cells/contrast-1.pt" in marker["files"]


def test_summary_and_clamp_lines(setup, tmp_path, capsys):
    tmp, argv = setup
    capsys.readouterr()
    assert run_cli([*argv[:-4], "--num-images", "10", "--workers", "0", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"--num-images 10: cityscapes:{tmp / 'cs'} val has only 3 images; evaluating all 3"
    assert out[1].startswith("corrupt: device cpu x1, 3 images") and "2 cells (0 reused), backend reference" in out[1]
    assert "batch 8" in out[1] and "0.70 M params" in out[1]
    assert read_json(tmp_path / "o" / "robustness.json")["settings"]["subset_seed"] is None


def test_default_out_and_slide_defaults_to_the_training_crop(tmp_path):
    import torch

    from repsep.data.labels import CITYSCAPES
    from repsep.engine.checkpoint import export_model
    from repsep.models import build_model
    from repsep.models.registry import model_config

    root = make_cityscapes(tmp_path / "cs")
    cfg = model_config("baseline_vit", size="tiny", num_classes=19, img_size=(64, 96))
    torch.manual_seed(0)
    (tmp_path / "run").mkdir()
    from repsep.config import load_config

    recipe = load_config("synthcity_tiny_baseline", ["data.crop=[64, 64]", "data.scale=[64, 96]"]).to_dict()
    export_model(tmp_path / "run" / "model_final.pt", build_model(cfg), cfg, CITYSCAPES, f"cityscapes:{root}", recipe)
    assert run_cli(["corrupt", "--model", str(tmp_path / "run" / "model_final.pt"), *SWEEP, "--mode", "slide"]) == 0
    inference_settings = read_json(tmp_path / "run" / "corrupt" / "robustness.json")["settings"]["inference"]
    assert inference_settings["crop"] == [64, 64] and inference_settings["stride"] == [42, 42]


def test_too_small_image_fails_before_the_clean_cell(tmp_path, capsys):
    make_tiny_model(tmp_path)
    small = tmp_path / "cs" / "leftImg8bit" / "val" / "bremen" / f"{IDS[2]}_leftImg8bit.png"
    Image.fromarray(np.zeros((24, 96, 3), np.uint8)).save(small)
    Image.fromarray(np.zeros((24, 96), np.uint8)).save(
        tmp_path / "cs" / "gtFine" / "val" / "bremen" / f"{IDS[2]}_gtFine_labelTrainIds.png")
    _one_error(["corrupt", "--model", str(tmp_path / "model.pt"), "--corruptions", "contrast", "--severities", "1",
                "--workers", "0", "--out", str(tmp_path / "out")], capsys,
               f"{small}: image is 24x96 (HxW), smaller than the 32x32 this run needs")
    assert not (tmp_path / "out").exists()


def test_disk_full_is_one_line_and_keeps_finished_cells(setup, tmp_path, capsys, monkeypatch):
    tmp, argv = setup
    out = tmp_path / "full"
    real_fsync = os.fsync

    def full_disk(fd):  # ENOSPC when the second cell's bytes reach the disk
        if "contrast-1.pt" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    _one_error([*argv, "--out", str(out)], capsys,
               f"{out}/cells/contrast-1.pt: cannot write (No space left on device)")
    monkeypatch.undo()
    assert sorted(p.name for p in (out / "cells").iterdir()) == ["clean.pt"]  # no temporary left behind
    calls = []
    real = inference.evaluate_dataset
    monkeypatch.setattr(inference, "evaluate_dataset", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert run_cli([*argv, "--out", str(out)]) == 0 and len(calls) == 1  # clean was kept
    assert _snapshot(out)["robustness.csv"] == _snapshot(tmp / "done")["robustness.csv"]


def test_from_disk_refuses_a_tree_of_another_dataset_or_seed(setup, tmp_path, capsys):
    tmp, argv = setup
    other = make_cityscapes(tmp_path / "other", size=(64, 128))
    mat = ["corruptions", "materialize", "--corruptions", "contrast", "--severities", "1"]
    assert run_cli([*mat, "--data", f"cityscapes:{other}", "--out", str(tmp_path / "other_tree")]) == 0
    _one_error([*argv, "--from-disk", str(tmp_path / "other_tree"), "--out", str(tmp_path / "o")], capsys,
               "made from another dataset or seed than this run (dataset_fingerprint: ")
    assert run_cli([*mat, "--data", f"cityscapes:{tmp / 'cs'}", "--out", str(tmp_path / "tree")]) == 0
    _one_error([*argv, "--from-disk", str(tmp_path / "tree"), "--seed", "2", "--out", str(tmp_path / "o")], capsys,
               "(base_seed: 0 vs 2)")
    _one_error([*argv[:4], "fog", *argv[5:], "--from-disk", str(tmp_path / "tree"), "--out", str(tmp_path / "o")],
               capsys, "has no finished fog severity 1")
    upper = tmp_path / "tree" / "contrast" / "1" / "leftImg8bit" / "val" / "aachen" / "extra_leftImg8bit.PNG"
    upper.write_bytes(b"x")
    _one_error([*argv, "--from-disk", str(tmp_path / "tree"), "--out", str(tmp_path / "o")], capsys,
               "extra_leftImg8bit.PNG, which repsep-bench materialize did not write")
    assert not (tmp_path / "o").exists()


def test_materialize_bad_options_and_other_seed(setup, tmp_path, capsys):
    tmp, _ = setup
    mat = ["corruptions", "materialize", "--data", f"cityscapes:{tmp / 'cs'}", "--corruptions", "contrast",
           "--severities", "1", "--out", str(tmp_path / "m")]
    _one_error([*mat, "--workers", "-2"], capsys, "--workers: -2 is not in the range 0..2147483647")
    _one_error([*mat, "--seed", "-1"], capsys, "--seed: -1 is not in the range 0..4294967295")
    assert run_cli(mat) == 0
    _one_error([*mat, "--seed", "1"], capsys, "holds a tree made with other settings (base_seed: 0 vs 1)")
    assert run_cli([*mat, "--seed", "1", "--overwrite"]) == 0
    assert read_json(tmp_path / "m" / "settings.json")["base_seed"] == 1


def test_materialize_disk_full_is_one_line_and_keeps_finished_files(setup, tmp_path, capsys, monkeypatch):
    tmp, _ = setup
    out = tmp_path / "m"
    mat = ["corruptions", "materialize", "--data", f"cityscapes:{tmp / 'cs'}", "--corruptions", "contrast",
           "--severities", "1", "--out", str(out)]
    real_fsync = os.fsync
    victim = f"{IDS[2]}_leftImg8bit.png"

    def full_disk(fd):
        if victim in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    _one_error(mat, capsys, f"{victim}: cannot write (No space left on device)")
    monkeypatch.undo()
    assert sorted(p.name for p in out.rglob("*.png")) == [f"{IDS[0]}_leftImg8bit.png", f"{IDS[1]}_leftImg8bit.png"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert run_cli(mat) == 0 and len(list(out.rglob("*.png"))) == 3
