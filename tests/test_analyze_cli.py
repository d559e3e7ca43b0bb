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


def _slide_recipe() -> dict:
    """A full training config whose eval runs slide windows at its 64x64 training crop."""
    from repsep.config import load_config

    return load_config("synthcity_tiny_baseline", ["data.crop=[64, 64]", "data.scale=[64, 128]",
                                                   "eval.crop=[64, 64]", "eval.stride=[42, 42]",
                                                   "eval.mode=slide"]).to_dict()


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """A 6-image SynthCity val split (64x128) and two untrained tiny exports: baseline ViT and RSSeg; a third
    export ``slide_vit`` holds the baseline's weights with a recipe that evaluates in slide mode at crop 64x64."""
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
        model = build_model(cfg).eval()
        export_model(path, model, cfg, CITYSCAPES, f"synthcity:{data}", {})
        ckpts.append(path)
        if name == "baseline_vit":
            (root / "slide_vit").mkdir()
            export_model(root / "slide_vit" / "model_final.pt", model, cfg, CITYSCAPES, f"synthcity:{data}",
                         _slide_recipe())
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
    assert sim["settings"]["num_images"] == 4 and sim["settings"]["regime"] == "whole"
    summary = json.loads((out / "summary.json").read_text())
    from repsep.data import open_dataset
    from repsep.data.subset import subset_indices

    dataset = open_dataset(f"synthcity:{data}", "val")
    assert summary["image_ids"] == [dataset.image_id(i) for i in subset_indices(dataset, 4, 0)]
    assert summary["settings"]["subset_seed"] == 0
    assert summary["layers"]["rsseg_vit"]["sasm"] == {"kind": "sasm", "axis": "decoder", "index": 1, "stride": 8}
    assert summary["layers"]["baseline_vit"]["vit.block4"]["axis"] == "backbone"
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
    assert {r["tokens"] for r in rows} == {"all", "interior", "boundary"}
    assert all(float(r["intra"]) >= 0 for r in rows if r["tokens"] == "all")
    with open(out / "similarity.csv", newline="") as f:
        assert {"same_cos_boundary", "diff_cos_interior", "boundary_share"} <= set(next(csv.DictReader(f)))

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


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


QUICK = ["--layers", "vit.block2,decoder_input", "--tsne-layers", "decoder_input", "--per-class", "5",
         "--batch-size", "6"]


@pytest.fixture(scope="module")
def quick_run(tiny_setup):
    """``analyze`` of the slide-recipe export with every default that matters: no --out, no --regime, and
    --num-images 100 on a 6-image split."""
    from typer.testing import CliRunner

    from repsep.cli import app

    root, data, _ = tiny_setup
    model = root / "slide_vit" / "model_final.pt"
    result = CliRunner().invoke(app, ["analyze", "--model", str(model), "--num-images", "100", *QUICK])
    assert result.exit_code == 0, result.output
    return root, model, result.output


def test_defaults_out_regime_clamp_and_settings_block(quick_run, tiny_setup):
    from repsep.data import open_dataset
    from repsep.ownership import MARKER

    root, model, output = quick_run
    out = root / "slide_vit" / "analyze"
    lines = output.splitlines()
    assert [ln for ln in lines if "--num-images" in ln] == [
        "analyze: --num-images 100 is more than the 6 images of split 'val'; analysing all 6"]
    start = [ln for ln in lines if ln.startswith("analyze: device")]
    assert len(start) == 1 and "6 val images" in start[0] and "batch 6" in start[0]
    assert "regime slide 64x64 stride 42x42" in start[0] and f"weights loaded: slide_vit ({model})" in start[0]
    summary = json.loads((out / "summary.json").read_text())
    settings = summary["settings"]
    dataset = open_dataset(settings["dataset"], "val")
    ids = [dataset.image_id(i) for i in range(len(dataset))]
    import hashlib

    assert settings == {
        "model_sha256": [_sha(model)], "dataset": settings["dataset"], "dataset_fingerprint": dataset.fingerprint(),
        "split": "val", "image_ids_sha256": hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest(),
        "num_images": 6, "subset_seed": None, "regime": "slide",
        "inference": {"mode": "slide", "crop": [64, 64], "stride": [42, 42], "scales": [1.0], "flip": False},
        "eval_scale": None, "precision": "fp32"}
    assert summary["num_images_requested"] == 100
    assert summary["layers"]["slide_vit"]["vit.block2"] == {"kind": "vit_block", "axis": "backbone", "index": 2,
                                                             "stride": 16}
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "analyze" and marker["finished"]
    assert {"summary.json", "similarity.json", "tsne/slide_vit__decoder_input.npz"} <= set(marker["files"])
    sim = json.loads((out / "similarity.json").read_text())
    assert sim["settings"]["model_sha256"] == [_sha(model)] and sim["settings"]["summary_layer"] == "decoder_input"


def test_slide_and_whole_features_of_a_real_model(tiny_setup):
    from analysis.features import image_features, layer_strides
    from repsep.engine.checkpoint import load_model

    root, _, (base, _) = tiny_setup
    model = load_model(base).model.eval()
    images = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    strides = layer_strides(model)
    names = ["vit.block4", "decoder_input"]
    with torch.no_grad():
        whole, _ = image_features(model, images, strides, names)
        one, _ = image_features(model, images, strides, names, regime="slide", crop=(64, 128), stride=(42, 85))
        slide, _ = image_features(model, images, strides, names, regime="slide", crop=(64, 64), stride=(42, 42))
    for n in names:
        assert torch.equal(whole[n], one[n])
        assert slide[n].shape == whole[n].shape and not torch.allclose(slide[n], whole[n], atol=1e-4)


def test_overwrite_swaps_in_and_refusals(quick_run, tmp_path, capsys):
    import shutil

    from cli_helpers import run_cli

    def invoke(argv):
        code = run_cli(argv)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    root, model, _ = quick_run
    out = tmp_path / "copy"
    shutil.copytree(root / "slide_vit" / "analyze", out)
    base = ["analyze", "--model", str(model), "--out", str(out), *QUICK]
    refused, refused_out = invoke(base)
    assert refused == 2 and "already holds a finished analyze result" in refused_out
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    failed, failed_out = invoke([*base, "--overwrite", "--layers", "vit.block99"])
    assert failed == 2 and "--layers: unknown feature" in failed_out
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # old result intact
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]  # no staging folder left behind
    args = [a if a != "decoder_input" or i != base.index("--tsne-layers") + 1 else "vit.block2"
            for i, a in enumerate(base)]
    done, done_out = invoke([*args, "--overwrite", "--num-images", "2"])
    assert done == 0, done_out
    assert json.loads((out / "summary.json").read_text())["settings"]["num_images"] == 2
    assert (out / "tsne" / "slide_vit__vit.block2.npz").is_file()
    assert not (out / "tsne" / "slide_vit__decoder_input.npz").exists()  # the old result's file went with it

    (out / "notes.txt").write_text("mine")
    foreign, foreign_out = invoke([*base, "--overwrite"])
    assert foreign == 2 and "notes.txt, which repsep-bench analyze did not write" in foreign_out
    assert (out / "notes.txt").read_text() == "mine"
    for bad_out in (model, model.parent):
        code, text = invoke(["analyze", "--model", str(model), "--out", str(bad_out), *QUICK])
        assert code == 2 and "is an input of this command" in text, text
