"""Imported transformers models (SegFormer, BEiT, Mask2Former) through `corrupt` and `analyze` on SynthCity and
into `report` beside a repsep-bench model."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from cli_helpers import run_cli  # noqa: E402
from hf_fixtures import build, save_folder  # noqa: E402

ARCHS = ("segformer", "beit", "mask2former")
CORRUPT = ["--corruptions", "contrast,gaussian_noise", "--severities", "1", "--num-images", "2"]
ANALYZE = ["--num-images", "2", "--per-class", "5", "--batch-size", "2", "--tsne-layers", "decoder_input"]


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swept(synthcity_small, tiny_run, tmp_path_factory):
    """Each imported model (and the tiny repsep-bench run) with a corrupt and an analyze folder."""
    root = tmp_path_factory.mktemp("hf_sweep")
    data = ["--data", f"synthcity:{synthcity_small}"]
    models = {"repsep": tiny_run / "model_final.pt"}
    for arch in ARCHS:
        folder = save_folder(build(arch), root / arch)
        models[arch] = root / f"{arch}.pt"
        assert run_cli(["models", "import", "hf", str(folder), "--dataset", "synthcity", *data,
                        "--out", str(models[arch])]) == 0
    for name, model in models.items():
        assert run_cli(["corrupt", "--model", str(model), *data, *CORRUPT, "--out", str(root / f"corrupt_{name}")]) == 0
        assert run_cli(["eval", "--model", str(model), *data, "--num-images", "2",
                        "--out", str(root / f"eval_{name}")]) == 0
    for name in ARCHS:  # BEiT: every layer; the others: the decoder input (quicker)
        layers = [] if name == "beit" else ["--layers", "decoder_input"]
        assert run_cli(["analyze", "--model", str(models[name]), *data, *ANALYZE, *layers,
                        "--out", str(root / f"analyze_{name}")]) == 0
    return root, models


def test_corrupt_and_analyze(swept):
    root, _ = swept
    for arch in ARCHS:
        rob = json.loads((root / f"corrupt_{arch}" / "robustness.json").read_text())
        assert set(rob["cells"]) == {"contrast", "gaussian_noise"} and rob["num_images"] == 2
        evaluated = json.loads((root / f"eval_{arch}" / "metrics.json").read_text())
        assert rob["clean"] == evaluated["mIoU"]  # the sweep's clean cell is `eval` on the same two images
        assert rob["clean_metrics"]["aAcc"] == evaluated["aAcc"] and 0.0 < evaluated["aAcc"] <= 100.0
        grid = rob["cells"]
        mpc = (grid["contrast"]["1"] + grid["gaussian_noise"]["1"]) / 2
        assert rob["mPC"] == pytest.approx(mpc) and rob["rPC"] == pytest.approx(100 * mpc / rob["clean"])
        summary = json.loads((root / f"analyze_{arch}" / "summary.json").read_text())
        assert summary["summary_layer"] == "decoder_input"
        layers = summary["layers"][next(iter(summary["layers"]))]
        assert all(info["axis"] in ("backbone", "decoder") for info in layers.values())
    beit = json.loads((root / "analyze_beit" / "summary.json").read_text())["layers"]
    assert list(next(iter(beit.values()))) == [f"beit.encoder.layer.{i}" for i in range(4)] + ["decoder_input"]


def test_report_beside_a_repsep_model(swept):
    root, _ = swept
    folders = [str(root / "corrupt_repsep")] + [str(root / f"{kind}_{name}") for name in ARCHS
                                                for kind in ("corrupt", "analyze")]
    out = root / "report"
    assert run_cli(["report", *folders, "--out", str(out)]) == 0
    text = (out / "README.md").read_text()
    main = text[text.index("### Main results"):text.index("### Robustness")]
    for arch, backbone in zip(ARCHS, ("hf:segformer", "hf:beit", "hf:mask2former/swin"), strict=True):
        assert f"| {arch} | {backbone} |" in main  # the export's name, the transformers architecture
    assert "| beit | beit.encoder.layer.3 |" in text
