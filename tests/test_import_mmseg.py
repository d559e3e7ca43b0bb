"""`models import mmseg`: an mmseg-built checkpoint -> a project export that eval, corrupt, analyze and
report run unchanged."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import run_cli
from corruption_fixtures import make_cityscapes
from mmseg_oracle import build_mmseg, meta_cfg_text, mmseg_logits, require_mmseg, save_mmseg, tiny_model_cfg

from repsep.engine.checkpoint import load_model
from repsep.io import read_json


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    require_mmseg()
    tmp = tmp_path_factory.mktemp("import")
    ref = build_mmseg(tiny_model_cfg("upernet_vit", num_classes=19), seed=1)
    save_mmseg(ref, tmp / "upernet.pth", cfg_text=meta_cfg_text("upernet_vit", 19))
    root = make_cityscapes(tmp / "cs")
    return tmp, ref, root


def test_import_then_eval_and_corrupt(imported, capsys):
    tmp, ref, root = imported
    out = tmp / "model.pt"
    argv = ["models", "import", "mmseg", str(tmp / "upernet.pth"), "--arch", "upernet_vit", "--dataset",
            "cityscapes", "--crop", "64x64", "--data", f"cityscapes:{root}", "--out", str(out)]
    assert run_cli(argv) == 0
    text = capsys.readouterr().out
    assert "unused keys (8; e.g. auxiliary heads): auxiliary_head.conv_seg.bias" in text
    assert "num_heads        1" in text and "from meta" in text
    assert run_cli(argv) == 2  # exists, no --overwrite
    loaded = load_model(out)
    record = loaded.source
    assert record["arch"] == "upernet_vit" and len(record["file_sha256"]) == 64
    assert all(k.startswith("auxiliary_head.") for k in record["unused_keys"]) and record["unused_keys"]
    assert loaded.class_table.name == "cityscapes" and loaded.model.aux_head is None
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        assert (loaded.model(x) - mmseg_logits(ref, x)).abs().max() <= 1e-4
    assert run_cli(["eval", "--model", str(out), "--out", str(tmp / "eval"), "--mode", "whole"]) == 0
    metrics = read_json(tmp / "eval" / "metrics.json")
    assert metrics["num_images"] == 3 and metrics["model_name"] == "upernet_vit"
    assert run_cli(["corrupt", "--model", str(out), "--out", str(tmp / "corrupt"), "--corruptions", "contrast",
                    "--severities", "1", "--num-images", "2"]) == 0  # slide inference with the recorded window
    assert (tmp / "corrupt" / "robustness.json").is_file()
    assert run_cli(["analyze", "--model", str(out), "--num-images", "2", "--out", str(tmp / "analyze")]) == 0
    assert (tmp / "analyze" / "similarity.json").is_file()
    assert run_cli(["report", str(tmp / "eval"), str(tmp / "corrupt"), "--out", str(tmp / "report")]) == 0
    assert "Robustness by corruption group" in (tmp / "report" / "report.json").read_text()


def test_non_square_training_grid_needs_crop(tmp_path):
    from repsep.errors import UserError
    from repsep.models.importers.mmseg import import_mmseg

    require_mmseg()
    cfg = tiny_model_cfg("segmenter_linear")
    cfg["backbone"]["img_size"] = (32, 64)  # grid 2x4: 8 tokens, not a square
    ref = build_mmseg(cfg, seed=2)
    save_mmseg(ref, tmp_path / "seg.pth")  # no config text: shapes and the arch defaults only
    with pytest.raises(UserError, match="not a square; give --crop"):
        import_mmseg(tmp_path / "seg.pth", "segmenter_linear")
    imported = import_mmseg(tmp_path / "seg.pth", "segmenter_linear", crop=(32, 64), overrides={"num_heads": 1})
    assert imported.config.img_size == (32, 64) and imported.sources["num_heads"] == "--set"
    x = torch.randn(1, 3, 48, 80)
    x_mm = x * imported.model.input_scale.view(1, 3, 1, 1) + imported.model.input_shift.view(1, 3, 1, 1)
    with torch.no_grad():
        assert (imported.model(x) - mmseg_logits(ref, x_mm)).abs().max() <= 1e-4
