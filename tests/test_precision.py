"""Mixed-precision inference (issue 21 item 2): `--precision fp32|bf16|fp16` for eval / corrupt / analyze, recorded
in the settings block and in each corrupt cell's key, and checked by the comparability rules."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import run_cli
from corruption_fixtures import make_tiny_model
from report_fixtures import MODELS, make_eval

from analysis.report import build_report
from repsep.comparability import EVAL_FIELDS, differences
from repsep.engine.precision import AutocastModel, resolve_precision, with_precision
from repsep.errors import UserError
from repsep.io import read_json

MAX_MIOU_DIFF = 0.25
"""mIoU points, fp32 vs bf16 on the tiny fixture model (measured: 0.05; a trained SynthCity model: -0.009, see
docs/performance.md)."""
MIN_PIXEL_AGREEMENT = 0.98
"""Share of pixels whose argmax is the same in fp32 and bf16 (measured: 0.993 on the untrained fixture model, whose
logits are near ties: std 0.004)."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    return folder, make_tiny_model(folder)


@pytest.fixture(scope="module")
def evals(tiny):
    """The tiny model evaluated in fp32 and bf16 (CPU): {precision: (folder, metrics.json)}."""
    folder, model = tiny
    out = {}
    for precision in ("fp32", "bf16"):
        target = folder / f"eval_{precision}"
        assert run_cli(["eval", "--model", str(model), "--workers", "0", "--precision", precision,
                        "--out", str(target)]) == 0
        out[precision] = (target, read_json(target / "metrics.json"))
    return out


def test_settings_record_the_precision_and_bf16_differs_only_slightly(evals):
    fp32, bf16 = evals["fp32"][1], evals["bf16"][1]
    assert fp32["settings"]["precision"] == "fp32" and bf16["settings"]["precision"] == "bf16"
    assert differences(fp32["settings"], bf16["settings"], EVAL_FIELDS) == ["precision: fp32 vs bf16"]
    assert abs(fp32["mIoU"] - bf16["mIoU"]) <= MAX_MIOU_DIFF
    assert "precision bf16" in (evals["bf16"][0] / "metrics.md").read_text()


def test_autocast_runs_the_forward_in_bf16_and_returns_fp32_logits(tiny):
    from repsep.data import open_dataset
    from repsep.data.transforms import EvalTransform
    from repsep.engine.checkpoint import load_model
    from repsep.engine.inference import predict

    loaded = load_model(tiny[1])
    model = loaded.model.eval()
    data = open_dataset(loaded.dataset_spec, "val", transform=EvalTransform())
    x = torch.stack([data[i]["image"] for i in range(len(data))])
    a = predict(model, x)
    b = predict(model, x, precision="bf16")
    s = predict(model, x, mode="slide", crop=(32, 48), stride=(16, 32), precision="bf16")
    assert b.dtype == torch.float32 and s.dtype == torch.float32
    assert not torch.equal(a, b)  # the forward really ran in bf16 ...
    assert (a.argmax(1) == b.argmax(1)).float().mean() >= MIN_PIXEL_AGREEMENT  # ... and decides the same pixels
    feats = with_precision(model, "bf16", "cpu").forward_features(x[:1])
    assert all(f.dtype == torch.float32 for f in feats.values())
    assert with_precision(model, "fp32", "cpu") is model and isinstance(with_precision(model, "fp16", "cpu"),
                                                                         AutocastModel)


def test_default_is_fp32_on_cpu_and_bad_values_are_one_line():
    assert resolve_precision(None, "cpu") == "fp32"
    assert resolve_precision("fp16", "cpu") == "fp16"  # torch's CPU autocast has fp16: it runs
    with pytest.raises(UserError, match=r"^--precision fp64: choose one of fp32, bf16, fp16$"):
        resolve_precision("fp64", "cpu")


def _corrupt(model, out, precision, *extra):
    return run_cli(["corrupt", "--model", str(model), "--corruptions", "contrast", "--severities", "1",
                    "--workers", "0", "--num-images", "1", "--precision", precision, "--out", str(out),
                    *extra])


def test_bf16_corrupt_cell_is_not_reused_by_an_fp32_rerun(tiny, tmp_path, capsys):
    _, model = tiny
    out = tmp_path / "sweep"
    assert _corrupt(model, out, "bf16") == 0
    assert read_json(out / "robustness.json")["settings"]["precision"] == "bf16"
    capsys.readouterr()
    assert _corrupt(model, out, "fp32") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "saved by a different run (differs in precision)" in err[0], err
    assert _corrupt(model, out, "fp32", "--overwrite") == 0
    assert read_json(out / "robustness.json")["settings"]["precision"] == "fp32"
    # a bf16 sweep refuses the fp32 one as its CE reference, naming the precision
    capsys.readouterr()
    assert _corrupt(model, tmp_path / "other", "bf16", "--reference-results", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differ in precision: fp32 vs bf16; pass --allow-mismatch" in err[0], err


def test_report_refuses_fp32_vs_bf16_and_reads_old_results_as_fp32(tmp_path):
    folders = [make_eval(tmp_path, "vit_base", MODELS["vit_base"][1]),
               make_eval(tmp_path, "rsseg", MODELS["rsseg"][1], precision="bf16")]
    with pytest.raises(UserError, match="differ in precision: fp32 vs bf16; pass --allow-mismatch"):
        build_report(folders, tmp_path / "r", resamples=10)
    from report_fixtures import settings

    old = settings("rsseg")
    del old["precision"]  # made before the field existed: fp32
    folders[1] = make_eval(tmp_path, "rsseg", MODELS["rsseg"][1], settings=old, folder=tmp_path / "old")
    assert build_report(folders, tmp_path / "r2", resamples=10).warnings == []
