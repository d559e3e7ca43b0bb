"""The ``analyze`` command end to end on two tiny untrained models, plus its deterministic figure and npz writers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from analysis.run import layer_sort_key, parse_layers
from repsep.errors import UserError


def test_layer_order_and_parsing():
    names = ["decoder_input", "sasm", "vit.block10", "pathway.stage1", "vit.block2", "dca", "zzz"]
    assert sorted(names, key=layer_sort_key) == ["vit.block2", "vit.block10", "pathway.stage1", "sasm", "dca",
                                                 "decoder_input", "zzz"]
    assert parse_layers("all") is None
    assert parse_layers("decoder_input, vit.block4") == ["decoder_input", "vit.block4"]
    with pytest.raises(UserError):
        parse_layers(" , ")


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """A 6-image SynthCity val split (64x128) and two untrained tiny exports: baseline ViT and RSSeg."""
    from repsep.data.labels import CITYSCAPES
    from repsep.data.synthcity import generate
    from repsep.engine.checkpoint import export_model
    from repsep.models import build_model, model_config

    root = tmp_path_factory.mktemp("analyze")
    data = generate(root / "synth", num_train=1, num_val=6, size=(64, 128), seed=0, workers=1)
    ckpts = []
    for name in ("baseline_vit", "rsseg_vit"):
        torch.manual_seed(0)
        cfg = model_config(name, size="tiny", num_classes=CITYSCAPES.num_classes)
        path = root / name / "model_final.pt"
        path.parent.mkdir()
        export_model(path, build_model(cfg).eval(), cfg, CITYSCAPES, f"synthcity:{data}", {})
        ckpts.append(path)
    return root, data, ckpts


@pytest.mark.slow
def test_analyze_two_models_end_to_end(tiny_setup):
    from typer.testing import CliRunner

    from repsep.cli import app

    root, data, (base, rsseg) = tiny_setup
    out = root / "out"
    args = ["analyze", "--model", str(base), "--model", str(rsseg), "--num-images", "4", "--per-class", "20",
            "--layers", "vit.block1,vit.block4,sasm,decoder_input",
            "--tsne-layers", "vit.block4", "--batch-size", "2", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Feature similarity at decoder_input" in result.output

    sim = json.loads((out / "similarity.json").read_text())
    assert sim["settings"]["num_images"] == 4
    assert list(sim["models"]) == ["baseline_vit", "rsseg_vit"]
    assert set(sim["models"]["baseline_vit"]) == {"vit.block1", "vit.block4", "decoder_input"}
    assert sim["settings"]["layers"] == ["vit.block1", "vit.block4", "sasm", "decoder_input"]  # depth order
    assert "sasm" in sim["models"]["rsseg_vit"] and "sasm" not in sim["models"]["baseline_vit"]
    for layers in sim["models"].values():
        for stats in layers.values():
            assert 0.0 <= stats["abs_cos"]["mean"] <= 1.0 and stats["abs_cos"]["num_images"] == 4
            assert 0.0 <= stats["residual_ratio"]["mean"] <= 1.0
    with open(out / "separation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"] for r in rows} == {"baseline_vit", "rsseg_vit"}
    assert all(float(r["intra"]) >= 0 for r in rows)

    cka = json.loads((out / "cka.json").read_text())
    pairs = {(p["model_a"], p["model_b"]): p for p in cka["pairs"]}
    assert set(pairs) == {("baseline_vit", "baseline_vit"), ("baseline_vit", "rsseg_vit"), ("rsseg_vit", "rsseg_vit")}
    self_cka = pairs[("baseline_vit", "baseline_vit")]["cka"]
    assert all(self_cka[i][i] == pytest.approx(1.0) for i in range(len(self_cka)))

    a, b = (np.load(out / "tsne" / f"{m}__vit.block4.npz") for m in ("baseline_vit", "rsseg_vit"))
    assert np.array_equal(a["image_ids"], b["image_ids"]) and np.array_equal(a["token_index"], b["token_index"])
    assert a["embedding"].shape == (len(a["labels"]), 2)
    for stem in ("similarity_depth", "variance_bars", "tsne_vit_block4"):
        for ext in ("png", "pdf", "txt"):
            assert (out / "figures" / f"{stem}.{ext}").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "analyze" and set(manifest["inputs"]["checkpoints"]) == {"baseline_vit", "rsseg_vit"}

    # regenerating gives identical bytes
    again = root / "again"
    assert CliRunner().invoke(app, [*args[:-1], str(again)]).exit_code == 0
    for name in ("similarity.json", "separation.csv", "cka.json", "tsne/rsseg_vit__vit.block4.npz",
                 "figures/similarity_depth.png", "figures/tsne_vit_block4.pdf"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_analyze_bad_layer_is_a_user_error(tiny_setup):
    from analysis.run import analyze

    root, _, (base, _) = tiny_setup
    with pytest.raises(UserError, match="--layers: unknown feature"):
        analyze([base], root / "bad", layers=["vit.block99"], progress=False)
    with pytest.raises(UserError, match="--tsne-layers: unknown feature"):
        analyze([base], root / "bad", tsne_layers=["sasm"], progress=False)
    with pytest.raises(UserError, match="--purity"):
        analyze([base], root / "bad", purity=0.0, progress=False)
