"""`models import hf`: every bad folder or option is one error line, exit 2 (nothing written)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("transformers")

from cli_helpers import run_cli  # noqa: E402
from hf_fixtures import build, save_folder  # noqa: E402


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return save_folder(build("segformer"), tmp_path_factory.mktemp("hf_good") / "segformer")


def _edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def _rename_label(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["id2label"]["3"] = "Mauer"
    (folder / "config.json").write_text(json.dumps(cfg))


CASES = [  # (id, how to spoil the folder, extra args, expected message start after "error: ")
    ("no-folder", lambda f: shutil.rmtree(f), [], "{f}: not a folder"),
    ("no-config", lambda f: (f / "config.json").unlink(), [], "{f}/config.json: file not found"),
    ("bad-json", lambda f: (f / "config.json").write_text("{"), [], "{f}/config.json: not readable JSON"),
    ("unknown-arch", lambda f: _edit_config(f, architectures=["BertModel"]), [],
     "{f}/config.json: architecture 'BertModel' is not supported"),
    ("no-weights", lambda f: (f / "model.safetensors").unlink(), [], "{f}: no weights"),
    ("weights-vs-config", lambda f: _edit_config(f, decoder_hidden_size=16), [],
     "{f}: weights do not match config.json: "),
    ("label-mismatch", _rename_label, [], "{f}/config.json: id2label 3 is 'Mauer' but cityscapes class 3 is 'wall'"),
    ("class-count", lambda f: None, ["--dataset", "ade20k"],
     "{f}/config.json: the model predicts 19 classes (id2label) but ade20k has 150"),
    ("bad-dataset", lambda f: None, ["--dataset", "kitti"], "--dataset 'kitti': choose one of"),
    ("map-missing", lambda f: None, ["--map", "{f}/../nope.json"], "--map {f}/../nope.json: file not found"),
    ("bad-preprocessor", lambda f: (f / "preprocessor_config.json").write_text('{"image_std": [0, 1, 1]}'), [],
     "{f}/preprocessor_config.json: image_mean / image_std must be 3 numbers each"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_folder(case, good, tmp_path, capsys):
    _, spoil, extra, message = case
    folder = tmp_path / "model"
    shutil.copytree(good, folder)
    spoil(folder)
    capsys.readouterr()
    out = tmp_path / "out.pt"
    args = [a.format(f=folder) for a in extra]
    assert run_cli(["models", "import", "hf", str(folder), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: " + message.format(f=folder)), err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_map_names_an_unknown_label(good, tmp_path, capsys):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("Strasse: road\n")
    assert run_cli(["models", "import", "hf", str(good), "--map", str(mapping), "--out", str(tmp_path / "o.pt")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: --map {mapping}: 'Strasse' is not a label of the model "
                                              "(id2label)")


def test_out_exists_and_inside_folder(good, tmp_path, capsys):
    out = tmp_path / "o.pt"
    out.write_bytes(b"x")
    assert run_cli(["models", "import", "hf", str(good), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --out {out}: exists (pass --overwrite to replace it)"
    assert run_cli(["models", "import", "hf", str(good), "--out", str(good / "m.pt")]) == 2
    assert "is inside the input folder" in capsys.readouterr().err


def test_oneformer_without_tokenizer(tmp_path, capsys):
    folder = save_folder(build("oneformer"), tmp_path / "oneformer")
    (folder / "vocab.json").unlink()
    capsys.readouterr()  # save_pretrained's progress bar
    assert run_cli(["models", "import", "hf", str(folder), "--out", str(tmp_path / "o.pt")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {folder}: OneFormer needs its tokenizer files")
