"""``repsep-bench report`` on hand-made train/eval/corrupt/analyze folders (see tests/report_fixtures.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from report_fixtures import MODELS, N, areas, make_corrupt, make_eval, make_runs, manifest, miou, write

import analysis.report.build as report_build
from analysis.report import build_report
from analysis.training_curves import fitted_change, last_fifth_change
from repsep.cli import main
from repsep.errors import UserError


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    return make_runs(tmp_path)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_report_tables_from_fixture_runs(runs, tmp_path):
    out = tmp_path / "reports" / "demo"
    result = build_report(runs, out, resamples=200)
    assert result.baseline == "vit_base"
    clean = {name: miou(*areas(gain, 0.0)) for name, (_, gain) in MODELS.items()}

    main_rows = _csv(out / "tables" / "main.csv")
    assert [r["model"] for r in main_rows] == list(MODELS)
    assert [float(r["params (M, deployed)"]) for r in main_rows] == [5.0, 5.1, 5.3]
    assert [float(r["mIoU SS"]) for r in main_rows] == list(clean.values())
    assert [r["mIoU MS+flip"] for r in main_rows] == ["", "", repr(clean["rsseg"] + 1.0)]

    ablation = _csv(out / "tables" / "ablation.csv")
    assert [(r["rung"], r["configuration"]) for r in ablation] == [
        ("baseline", "vit_base"), ("+discrepancy", "vit_pathway"), ("+DCA", "rsseg")]
    assert [float(r["Δ first rung"]) for r in ablation[1:]] == pytest.approx([5.0, 10.0], abs=1e-9)
    assert ablation[0]["Δ prev"] == "" and float(ablation[2]["Δ prev"]) == pytest.approx(5.0, abs=1e-9)
    # constant per-image gains: the step's interval collapses on it
    assert [float(ablation[2][k]) for k in ("Δ prev low", "Δ prev high")] == pytest.approx([5.0, 5.0], abs=1e-9)
    assert [(r["seeds"], r["sd"]) for r in ablation] == [("1", "")] * 3  # one seed: no spread
    assert [r["iterations"] for r in ablation] == ["1000"] * 3  # schedule.iters of each train folder's config
    assert not (out / "tables" / "seeds.csv").exists()  # one seed per configuration: no per-configuration table

    convergence = _csv(out / "tables" / "convergence.csv")  # switches on: 0, 1, 3 -> changes 0, 0.5, 1.5
    assert [(r["model"], r["val points"], r["from iteration"], float(r["Δ last fifth"]), r["flat (abs Δ < 1)"])
            for r in convergence] == [("vit_base", "3", "800", 0.0, "yes"), ("vit_pathway", "3", "800", 0.5, "yes"),
                                      ("rsseg", "3", "800", 1.5, "no")]
    assert [float(r["fitted Δ"]) for r in convergence] == [0.0, 0.5, 1.5]  # a line through two points
    assert (out / "figures" / "val_miou.png").read_bytes()[:4] == b"\x89PNG"

    with open(out / "tables" / "robustness.csv", encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    assert header == ["model", "clean", "noise/gaussian_noise", "noise/shot_noise", "blur/defocus_blur", "mPC",
                      "rPC (%)"]
    groups = _csv(out / "tables" / "robustness_groups.csv")
    assert list(groups[0]) == ["model", "clean", "noise", "blur", "mPC"]

    unc = _csv(out / "tables" / "uncertainty.csv")
    assert [(r["configuration"], r["setting"]) for r in unc] == [(m, s) for m in ("vit_pathway", "rsseg")
                                                                 for s in ("clean", "noise", "blur")]
    for r in unc:  # constant per-image gains: the interval collapses on the known difference
        expected = 5.0 if r["configuration"] == "vit_pathway" else 10.0
        assert [float(r[k]) for k in ("Δ mIoU", "95% low", "95% high")] == pytest.approx([expected] * 3, abs=1e-9)
        # issue 18: 12 images (< 20) and one training seed per model: both marks, and never called significant
        assert (r["images"], r["seeds"], r["baseline seeds"], r["significant"], r["marks"]) == (
            "12", "1", "1", "", "†‡")

    similarity = _csv(out / "tables" / "similarity.csv")
    assert [(r["model"], float(r["abs_cos"])) for r in similarity] == [("vit_base", 0.5), ("rsseg", 0.6)]
    assert [(r["model"], float(r["ratio"])) for r in _csv(out / "tables" / "separation.csv")] == [
        ("vit_base", 2.0), ("rsseg", 3.0)]
    assert [r["layer"] for r in _csv(out / "tables" / "similarity_layers.csv")] == ["vit.block1", "decoder_input"] * 2
    for stem in ("main", "ablation", "robustness", "robustness_groups", "uncertainty", "similarity", "separation",
                 "similarity_layers", "separation_layers"):
        assert (out / "tables" / f"{stem}.tex").read_text().startswith("% ")
    assert (out / "figures" / "robustness_severity.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "figures" / "robustness_severity.pdf").read_bytes()[:4] == b"%PDF"
    assert (out / "figures" / "analyze" / "similarity_depth.png").read_bytes() == b"\x89PNG not really"
    assert not (out / "figures" / "analyze" / "analyze").exists()  # issue 18: the path was doubled

    readme = (out / "README.md").read_text()
    for text in ("### Main results", "### Ablation", "### Robustness", "### mIoU difference vs vit_base",
                 "](figures/robustness_severity.png)",
                 "![val mIoU vs training iteration](figures/val_miou.png)",
                 "](figures/analyze/similarity_depth.png)", "Dataset: synthcity (val).",
                 "**vit_base, rsseg** — Feature similarity against depth.", "### Feature similarity at decoder_input",
                 "## How it was made", "`repsep-bench corrupt --out corrupt_rsseg`",
                 "†: fewer than 20 images", "‡: fewer than 2 training seeds"):
        assert text in readme
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "report" and manifest["seeds"] == {"bootstrap": 0}
    assert manifest["datasets"] == ["synthcity"]
    record = manifest["inputs"][str(runs[2])]
    assert record["kind"] == "corrupt" and record["command"] == "repsep-bench corrupt --out corrupt_vit_base"
    assert record["inputs"]["model_sha256"] == "f" * 64 and set(record["files"]) == {"robustness.json",
                                                                                     "per_image.npz"}
    data = json.loads((out / "report.json").read_text())
    assert data["bootstrap"]["rsseg"]["clean"]["estimate"] == pytest.approx(10.0, abs=1e-9)
    assert not [p for p in out.parent.iterdir() if p.name != "demo"]  # no temporary folders left


def test_report_is_byte_identical_when_rebuilt(runs, tmp_path):
    a, b = build_report(runs, tmp_path / "a", resamples=50).out, build_report(runs, tmp_path / "b", resamples=50).out
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name not in ("manifest.json",
                                                                                           ".repsep-bench.json"))
    assert len(files) == 28  # 10 tables x (csv, tex), README, report.json, 2 figures x (png, pdf), analyze png + txt
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name not in (
        "manifest.json", ".repsep-bench.json"))
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_bootstrap_matches_images_by_id_not_by_order(tmp_path):
    gain = MODELS["rsseg"][1]
    folders = [make_corrupt(tmp_path, "vit_base", MODELS["vit_base"][1]),
               make_corrupt(tmp_path, "rsseg", gain, order=np.arange(N)[::-1])]
    build_report(folders, tmp_path / "r", resamples=20, baseline="vit_base")
    unc = _csv(tmp_path / "r" / "tables" / "uncertainty.csv")
    assert [float(r["95% low"]) for r in unc] == pytest.approx([10.0] * 3, abs=1e-9)


def test_different_image_ids_are_a_user_error(tmp_path):
    other = [f"other_{i}" for i in range(N)]
    folders = [make_eval(tmp_path, "vit_base", MODELS["vit_base"][1]),
               make_eval(tmp_path, "rsseg", MODELS["rsseg"][1], ids=other)]
    with pytest.raises(UserError, match="differ in image_ids_sha256: .* vs .*; pass --allow-mismatch"):
        build_report(folders, tmp_path / "r", resamples=10)
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="per-image ids differ"):  # allowed, the bootstrap still cannot pair them
        build_report(folders, tmp_path / "r", resamples=10, allow_mismatch=True)


def test_existing_report_needs_overwrite(runs, tmp_path):
    out = tmp_path / "r"
    build_report(runs[:2], out, resamples=10)
    with pytest.raises(UserError, match="already holds a finished report result; pass --overwrite"):
        build_report(runs, out, resamples=10)
    build_report(runs, out, resamples=10, overwrite=True)
    assert (out / "tables" / "robustness.csv").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupted_report_leaves_no_folder(runs, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_build.report_figures, "severity_figure", fail)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(KeyboardInterrupt):
        build_report(runs, tmp_path / "r", resamples=10)
    assert sorted(tmp_path.iterdir()) == before


def test_unknown_folder_and_baseline_are_user_errors(runs, tmp_path, capsys):
    stray = tmp_path / "stray"
    stray.mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["report", str(runs[0]), str(stray), "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {stray}: not a train, eval, corrupt, shift or analyze output folder")
    with pytest.raises(UserError, match="--baseline nope: no such model or configuration; the models are: vit_base"):
        build_report(runs, tmp_path / "r", baseline="nope")


def test_broken_training_log_is_a_user_error_naming_the_line(runs, tmp_path):
    log = runs[0] / "metrics.jsonl"
    log.write_text(log.read_text() + "{not json\n")
    with pytest.raises(UserError, match=f"^{log}:7: not a JSON line$"):
        build_report(runs, tmp_path / "r", resamples=10)
    assert not (tmp_path / "r").exists()


def test_fitted_change_discounts_one_low_validation_at_the_start():
    # one low validation at the start of the last fifth, flat after it: the end points say +2.0; the line through
    # x - 900 = -100, -50, 0, 50, 100 and y - 29.6 = -1.6, 0.4, 0.4, 0.4, 0.4 has slope 200 / 25000 = 0.008 per
    # iteration, so +1.6 over the 200 iterations
    curve = [(400, 10.0), (800, 28.0), (850, 30.0), (900, 30.0), (950, 30.0), (1000, 30.0)]
    assert last_fifth_change(curve, 1000) == (800, 2.0)
    assert fitted_change(curve, 800) == pytest.approx(1.6, abs=1e-12)


def test_cli_prints_tables_and_writes_the_folder(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # typer exits 0 after a successful command
        main(["report", *map(str, runs), "--out", str(tmp_path / "r"), "--resamples", "20", "--baseline",
              "vit_pathway"])
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "### Main results" in printed and "| rsseg | vit_pathway | clean | +5.00 | +5.00 | +5.00 |" in printed
    assert (tmp_path / "r" / "README.md").is_file()


def test_params_and_switches_come_from_the_train_config_when_no_model_info(tmp_path):
    from repsep.models import build_model
    from repsep.models.profile import model_info
    from repsep.models.registry import model_config

    folders = []
    for name in ("baseline_vit", "rsseg_vit"):
        folder = tmp_path / name
        write(folder / "config.yaml", yaml.safe_dump({"model": {"name": name, "size": "tiny", "num_classes": 19,
                                                                 "img_size": [64, 128]}}))
        manifest(folder, "train", {})
        folders.append(folder)
    build_report(folders, tmp_path / "r")
    rows = _csv(tmp_path / "r" / "tables" / "main.csv")
    for row, name in zip(rows, ("baseline_vit", "rsseg_vit"), strict=True):
        model = build_model(model_config(name, size="tiny", num_classes=19, img_size=(64, 128))).deploy()
        assert float(row["params (M, deployed)"]) == sum(p.numel() for p in model.parameters()) / 1e6
        info = model_info(model_config(name, size="tiny", num_classes=19, img_size=(64, 128)), (64, 128))
        assert float(row["GMACs"]) == info["gmacs"]["total"] > 0 and row["mIoU SS"] == ""
    assert "(64x128)" in (tmp_path / "r" / "README.md").read_text()
    assert not (tmp_path / "r" / "tables" / "ablation.csv").exists()  # no mIoU, no ablation
