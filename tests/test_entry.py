"""`corruptions.evaluate_model`: any torch module through the `corrupt` sweep, the same numbers and files as
`corrupt --model` of the same model exported as a checkpoint; logits at another size; the module's identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from corruption_fixtures import make_tiny_model
from torch import nn

import corruptions
from repsep.data.labels import CITYSCAPES
from repsep.engine.checkpoint import load_model
from repsep.io import read_json

SWEEP = {"corruptions": "fog,contrast", "severities": [1], "num_images": 2}
ARGS = ["--corruptions", "fog,contrast", "--severities", "1", "--num-images", "2", "--workers", "0"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("entry")
    model = make_tiny_model(tmp)
    data = f"cityscapes:{tmp / 'cs'}"
    assert run_cli(["corrupt", "--model", str(model), "--data", data, *ARGS, "--out", str(tmp / "ckpt")]) == 0
    return tmp, model, data


def test_module_sweep_equals_checkpoint_sweep(setup):
    tmp, model, data = setup
    net = load_model(model).model
    result = corruptions.evaluate_model(net, data=data, out=tmp / "module", name="tiny", classes=CITYSCAPES.classes,
                                        **SWEEP)
    ref = read_json(tmp / "ckpt" / "robustness.json")
    saved = read_json(tmp / "module" / "robustness.json")
    assert result["mPC"] == saved["mPC"] and result["cells"]["fog"][1] == saved["cells"]["fog"]["1"]
    assert saved["cells"] == ref["cells"] and saved["clean"] == ref["clean"] and saved["mPC"] == ref["mPC"]
    assert saved["clean_metrics"] == ref["clean_metrics"]
    a, b = np.load(tmp / "module" / "per_image.npz"), np.load(tmp / "ckpt" / "per_image.npz")
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        if key != "settings":
            assert np.array_equal(a[key], b[key]), key
    s, r = saved["settings"], ref["settings"]
    assert {k: v for k, v in s.items() if k != "model_sha256"} == {k: v for k, v in r.items() if k != "model_sha256"}
    assert s["model_sha256"] == corruptions.module_sha256(net, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375),
                                                          CITYSCAPES.classes)
    assert saved["model"] == "module:tiny"
    manifest = read_json(tmp / "module" / "manifest.json")
    assert manifest["kind"] == "corrupt" and manifest["inputs"]["module"]["name"] == "tiny"


def test_identity_is_deterministic_and_covers_weights_and_normalisation(setup):
    _, model, _ = setup
    net = load_model(model).model
    digest = corruptions.module_sha256(net, (1, 2, 3), (4, 5, 6), ["a"])
    assert digest == corruptions.module_sha256(load_model(model).model, (1, 2, 3), (4, 5, 6), ["a"])
    assert digest != corruptions.module_sha256(net, (1, 2, 3), (4, 5, 7), ["a"])
    with torch.no_grad():
        next(net.parameters()).add_(1e-3)
    assert digest != corruptions.module_sha256(net, (1, 2, 3), (4, 5, 6), ["a"])


class RoadAtQuarterSize(nn.Module):
    """Logits at a quarter of the input size that say road (class 0) everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        logits = torch.zeros(b, 19, h // 4, w // 4)
        logits[:, 0] = 1.0
        return logits


def test_small_logits_are_resized_known_answer(setup):
    tmp, _, data = setup
    result = corruptions.evaluate_model(RoadAtQuarterSize(), data=data, out=tmp / "road", name="road",
                                        classes=CITYSCAPES, mean=(0, 0, 0), std=(1, 1, 1), **SWEEP)
    # labels: 4 ignored rows, road rows 4..31 (28 rows), car rows 32..63 (32): road IoU 28/60, car IoU 0
    expected = 100 * (28 / 60 + 0) / 2
    assert result["clean"] == pytest.approx(expected)
    assert all(v == pytest.approx(expected) for per in result["cells"].values() for v in per.values())


def test_report_reads_module_results_beside_the_checkpoint(setup):
    tmp, _, _ = setup
    assert (tmp / "module" / "robustness.json").is_file() and (tmp / "road" / "robustness.json").is_file()
    assert run_cli(["report", str(tmp / "ckpt"), str(tmp / "module"), str(tmp / "road"), "--out",
                    str(tmp / "report"), "--resamples", "20"]) == 0
    text = (tmp / "report" / "README.md").read_text()
    assert all(name in text for name in ("ckpt", "module", "road"))
