"""Bad config values, option values and --json targets: one stderr line ``error: ...`` naming the key or option,
exit code 2, no traceback, and no file created, changed or removed (issue 22 items 4 and 5).

Each row is (name, command line, expected message fragment). ``{ws}`` is the per-test work folder (holding a
3-image Cityscapes folder ``{cs}``, a foreign file ``{foreign}`` and a recipe ``{yaml}`` with a NaN lr); no row
starts real work: every value is refused before a model or dataset is opened.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cli_helpers import run_cli
from corruption_fixtures import make_cityscapes

TRAIN = ["train", "synthcity_tiny_rsseg", "--out", "{ws}/run"]
EVAL = ["eval", "--model", "{ws}/none.pt", "--out", "{ws}/ev"]
CORRUPT = ["corrupt", "--model", "{ws}/none.pt", "--out", "{ws}/co"]

ROWS = [
    # config values (--set and a recipe file), one per kind of value that reached torch / numpy before
    ("lr-nan", [*TRAIN, "--set", "optim.lr=.nan"], "--set optim.lr=.nan: optim.lr: must be a finite number"),
    ("lr-inf-text", [*TRAIN, "--set", "optim.lr=1e999"], "optim.lr: must be a finite number, got inf"),
    ("wd-inf", [*TRAIN, "--set", "optim.weight_decay=.inf"], "optim.weight_decay: must be a finite number"),
    ("wd-negative", [*TRAIN, "--set", "optim.weight_decay=-0.1"], "optim.weight_decay: must be in [0, 10]"),
    ("betas-one", [*TRAIN, "--set", "optim.betas=[0.9, 1.0]"], "optim.betas: must be in [0, 1), got [0.9, 1.0]"),
    ("betas-negative", [*TRAIN, "--set", "optim.betas=[-0.1, 0.9]"], "optim.betas: must be in [0, 1)"),
    ("batch-zero", [*TRAIN, "--set", "data.batch_size=0"], "data.batch_size: must be in [1, 4096], got 0"),
    ("crop-1x1", [*TRAIN, "--set", "data.crop=[1, 1]"], "data.crop: must be in [64, 16384], got [1, 1]"),
    ("crop-beyond-scale", [*TRAIN, "--set", "data.crop=[4096, 4096]"], "data.crop: larger than any resized"),
    ("scale-negative", [*TRAIN, "--set", "data.scale=[-5, 64]"], "data.scale: must be in [1, 16384]"),
    ("ratio-reversed", [*TRAIN, "--set", "data.ratio_range=[2.0, 0.5]"], "data.ratio_range: must be [low, high]"),
    ("seed-negative", [*TRAIN, "--set", "seed=-1"], "seed: must be in [0, 4294967295], got -1"),
    ("seed-huge", [*TRAIN, "--set", "seed=4294967296"], "seed: must be in [0, 4294967295]"),
    ("seed-enormous", [*TRAIN, "--set", "seed=1" + "0" * 400], "seed: must be in [0, 4294967295]"),
    ("iters-huge", [*TRAIN, "--set", "schedule.iters=100000000000000000000"], "schedule.iters: must be in"),
    ("scales-nan", [*TRAIN, "--set", "eval.scales=[.nan]"], "eval.scales: must be a finite number"),
    ("scales-empty", [*TRAIN, "--set", "eval.scales=[]"], "eval.scales: needs at least 1 value"),
    ("scales-tiny", [*TRAIN, "--set", "eval.scales=[0.001]"], "eval.scales: must be in [0.0625, 16]"),
    ("eval-stride-gap", [*TRAIN, "--set", "eval={{mode: slide, crop: [64, 64], stride: [128, 128]}}"],
     "eval.stride: must be at most the crop"),
    ("float-overflow", [*TRAIN, "--set", "optim.lr=1" + "0" * 400], "optim.lr: must be a finite number"),
    ("ignore-index-300", [*TRAIN, "--set", "model.ignore_index=300"], "model.ignore_index: must be in [0, 255]"),
    ("ignore-index-negative", [*TRAIN, "--set", "model.ignore_index=-1"], "model.ignore_index: must be in [0, 255]"),
    ("ignore-index-a-class", [*TRAIN, "--set", "model.ignore_index=3"], "model.ignore_index: must not be a class"),
    ("num-classes-zero", [*TRAIN, "--set", "model.num_classes=0"], "model.num_classes: must be in [1, 255]"),
    ("dropout-one", [*TRAIN, "--set", "model.dropout=1.0"], "model.dropout: must be in [0, 1)"),
    ("heads-not-dividing", [*TRAIN, "--set", "model.embed_dim=100"], "model.embed_dim: must be a multiple of"),
    ("drop-path-nan", [*TRAIN, "--set", "model.drop_path=.nan"], "model.drop_path: must be a finite number"),
    ("recipe-file-nan", ["train", "{yaml}", "--out", "{ws}/run"], "{yaml}: optim.lr: must be a finite number"),
    ("models-info-set-nan", ["models", "info", "rsseg_vit", "--set", "dropout=.nan"], "model.dropout: must be a"),
    # option values
    ("crop-0x0", [*EVAL, "--crop", "0x0"], "--crop 0x0: each side must be between 16 and 16384"),
    ("stride-0x16", [*EVAL, "--crop", "32x32", "--stride", "0x16"], "--stride 0x16: each side must be between 1"),
    ("crop-unicode-digits", [*EVAL, "--crop", "\u00b2x\u00b2"], "--crop \u00b2x\u00b2: expected HEIGHTxWIDTH"),
    ("scales-0.001", [*EVAL, "--scales", "0.001"], "--scales 0.001: factors must be finite numbers between"),
    ("scales-nan-option", [*EVAL, "--scales", "1,nan"], "--scales 1,nan: factors must be finite"),
    ("scales-empty-item", [*EVAL, "--scales", "1,,2"], "--scales 1,,2: expected comma-separated factors"),
    ("workers-negative", [*EVAL, "--workers", "-1"], "--workers: "),
    ("workers-huge", [*EVAL, "--workers", "99999999999"], "--workers: 99999999999 is not in the range 0..2147483647"),
    ("cache-gb-inf", [*CORRUPT, "--cache-gb", "inf"], "--cache-gb: inf is not a finite number"),
    ("cache-gb-nan", [*CORRUPT, "--cache-gb", "nan"], "--cache-gb: "),
    ("num-images-zero", [*CORRUPT, "--num-images", "0"], "--num-images"),
    ("num-images-text", [*CORRUPT, "--num-images", "many"], "--num-images: "),
    ("seed-option-negative", [*CORRUPT, "--seed", "-1"], "--seed: -1 is not in the range 0..4294967295"),
    ("synth-seed-huge", ["data", "synth", "--out", "{ws}/sc", "--seed", "4294967296"], "--seed: 4294967296 is not"),
    ("synth-thin-share", ["data", "synth", "--out", "{ws}/sc", "--thin-share", "1.5"], "--thin-share: 1.5 is not"),
    ("synth-size-unicode", ["data", "synth", "--out", "{ws}/sc", "--size", "\u00b2x\u00b2"], "--size"),
    ("analyze-purity-nan", ["analyze", "--model", "{ws}/none.pt", "--purity", "nan"], "--purity: nan is not"),
    ("report-resamples-negative", ["report", "{ws}", "--out", "{ws}/rep", "--resamples", "-5"], "--resamples: "),
    ("unknown-option", [*EVAL, "--wrkers", "1"], "No such option: --wrkers"),
    ("missing-option", ["eval"], "Missing option '--model'"),
    ("missing-argument", ["models", "info"], "Missing argument"),
    ("extra-argument", ["models", "list", "surplus"], "Got unexpected extra argument"),
    # --json targets: the ownership rule for single files
    ("json-folder", ["models", "list", "--json", "{ws}"], "--json {ws}: is a folder"),
    ("json-root", ["models", "list", "--json", "/"], "--json /: is a folder"),
    ("json-foreign-file", ["models", "list", "--json", "{foreign}"],
     "--json {foreign}: exists and was not written by repsep-bench models list"),
    ("json-other-command", ["models", "list", "--json", "{ws}/info.json"],
     "was not written by repsep-bench models list"),
    ("json-dataset-file", ["data", "check", "{cs}", "--json", "{cs}/gtFine/val/aachen/x.json"],
     "is inside the dataset root {cs}"),
    ("json-dataset-label", ["models", "list", "--json", "{cs}/gtFine/val/aachen/aachen_000000_000019_gtFine_"
                            "labelTrainIds.png"], "is inside the dataset root {cs}"),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_cityscapes(tmp_path_factory.mktemp("bad_inputs_config") / "cs")


@pytest.fixture
def ws(tmp_path, dataset) -> dict[str, str]:
    import shutil

    shutil.copytree(dataset, tmp_path / "cs")
    (tmp_path / "notes.json").write_text('{"mine": true}\n')
    (tmp_path / "info.json").write_text('{"written_by": "repsep-bench models info"}\n')
    (tmp_path / "nan.yaml").write_text("model: {name: rsseg_vit}\noptim: {lr: .nan}\n")
    return {"ws": str(tmp_path), "cs": str(tmp_path / "cs"), "foreign": str(tmp_path / "notes.json"),
            "yaml": str(tmp_path / "nan.yaml")}


def snapshot(root: Path) -> dict[str, str]:
    return {str(p): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")}


@pytest.mark.parametrize("name, argv, fragment", ROWS, ids=[r[0] for r in ROWS])
def test_bad_value_is_one_error_line(ws, capsys, name, argv, fragment):
    argv = [a.format(**ws) for a in argv]
    before = snapshot(Path(ws["ws"]))
    capsys.readouterr()
    code = run_cli(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment.format(**ws) in lines[0]
    assert snapshot(Path(ws["ws"])) == before


def test_json_target_is_replaced_only_when_written_by_the_same_command(tmp_path, capsys):
    target = tmp_path / "models.json"
    assert run_cli(["models", "list", "--json", str(target)]) == 0
    first = json.loads(target.read_text())
    assert first["written_by"] == "repsep-bench models list"
    assert [row["name"] for row in first["models"]][:2] == ["baseline_vit", "rsseg_vit"]
    assert run_cli(["models", "list", "--json", str(target)]) == 0  # its own file: replaced
    capsys.readouterr()
    assert run_cli(["models", "info", "baseline_vit", "--size", "64", "--json", str(target)]) == 2  # another's
    assert "was not written by repsep-bench models info" in capsys.readouterr().err
    assert json.loads(target.read_text()) == first


def test_config_validation_names_key_in_library_calls():
    """The dataclasses validate on construction too (not only when loaded from YAML)."""
    from repsep.config import DataConfig, OptimConfig
    from repsep.errors import UserError
    from repsep.models import ModelConfig

    with pytest.raises(ValueError, match=r"^lr: must be a finite number, got nan$"):
        OptimConfig(lr=float("nan"))
    with pytest.raises(ValueError, match=r"^crop: must be in \[64, 16384\], got \[1, 1\]$"):
        DataConfig(crop=(1, 1))
    with pytest.raises(UserError, match=r"^model.ignore_index: must be in \[0, 255\], got 256$"):
        ModelConfig(ignore_index=256)
    assert OptimConfig(betas=(0.0, 0.5)).betas == (0.0, 0.5)
