"""``repsep-bench shift``: a tiny SynthCity model on two SynthCity folders made with other knobs and seeds (stand-ins
for adverse conditions): the numbers are those of ``eval --data``, a rerun reuses finished entries, and ``report``
shows the natural-shift table, its bootstrap intervals and the figure."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from report_fixtures import MODELS, make_corrupt, make_train
from shift_fixtures import ENTRIES, make_condition_sets, make_shift

import repsep.engine.eval_run as eval_run
from analysis.report import build_report
from repsep.engine.shift import entry_names
from repsep.errors import UserError


@pytest.fixture(scope="module")
def conditions(tmp_path_factory) -> dict[str, Path]:
    return make_condition_sets(tmp_path_factory.mktemp("conditions"))


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_entry_names():
    assert entry_names(["acdc:/d/ACDC:fog", "acdc:/d/ACDC:night", "darkzurich:/x/dz"]) == [
        "acdc-fog", "acdc-night", "darkzurich"]
    assert entry_names(["synthcity:/a/fogged", "synthcity:/b/dense"]) == ["synthcity-fogged", "synthcity-dense"]
    assert entry_names(["synthcity:/a/x", "synthcity:/b/x", "foggy_cityscapes:/f:0.02"]) == [
        "synthcity-x", "synthcity-x-2", "foggy_cityscapes-0.02"]


def test_shift_equals_eval_per_dataset_and_goes_into_report(tiny_run, synthcity_small, conditions, tmp_path):
    model, out = tiny_run / "model_final.pt", tmp_path / "shift"
    specs = [f"synthcity:{conditions['fogged']}", f"synthcity:{conditions['dense']}"]
    argv = ["--quiet", "shift", "--model", str(model), "--out", str(out), "--workers", "0", "--num-images", "2",
            "--by-group", "--json", str(tmp_path / "shift_copy.json")]
    assert run_cli([*argv, "--data", specs[0], "--data", specs[1]]) == 0
    result = json.loads((out / "shift.json").read_text())
    assert result["clean"]["dataset"] == f"synthcity:{synthcity_small}"  # default: the training dataset
    assert [e["name"] for e in result["entries"]] == ["synthcity-fogged", "synthcity-dense"]
    per_image = _npz(out / "per_image.npz")
    for k, (name, spec) in enumerate([("clean", None), *zip(["synthcity-fogged", "synthcity-dense"], specs,
                                                             strict=True)]):
        eval_out = tmp_path / f"eval_{k}"
        assert run_cli(["--quiet", "eval", "--model", str(model), "--out", str(eval_out), "--workers", "0",
                        "--num-images", "2", *(["--data", spec] if spec else [])]) == 0
        metrics = json.loads((eval_out / "metrics.json").read_text())
        entry = result["clean"] if name == "clean" else result["entries"][k - 1]
        assert entry["mIoU"] == metrics["mIoU"] and entry["num_images"] == metrics["num_images"] == 2
        assert entry["settings"] == metrics["settings"]  # the comparability block of `eval --data`
        assert list(entry["groups"]) == ["synthville"]  # --by-group: SynthCity's one city folder is one stratum
        assert entry["groups"]["synthville"]["mIoU"] == pytest.approx(metrics["mIoU"], rel=1e-9)
        assert per_image[f"{name}/groups"].tolist() == ["synthville"] * 2
        for key, value in _npz(eval_out / "per_image.npz").items():
            np.testing.assert_array_equal(per_image[f"{name}/{key}"], value)
    values = [e["mIoU"] for e in result["entries"]]
    assert result["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert result["entries"][1]["ratio"] == pytest.approx(100 * values[1] / result["clean"]["mIoU"], rel=1e-12)
    assert result["mean_ratio"] == pytest.approx(100 * result["mean"] / result["clean"]["mIoU"], rel=1e-12)
    copy = json.loads((tmp_path / "shift_copy.json").read_text())
    assert copy.pop("written_by") == "repsep-bench shift" and copy == result
    rows = _csv(out / "shift.csv")
    assert [(r["name"], r["group"]) for r in rows] == [
        (n, g) for n in ("clean", "synthcity-fogged", "synthcity-dense") for g in ("", "synthville")] + [("mean", "")]
    assert float(rows[-1]["mIoU"]) == result["mean"]

    report = build_report([tiny_run, out], tmp_path / "report", resamples=50)
    assert "shift" in [t.stem for t in report.tables]
    row = _csv(tmp_path / "report" / "tables" / "shift.csv")[0]
    assert float(row["mIoU/synthcity-dense"]) == values[1] and float(row["% of clean/mean"]) == result["mean_ratio"]
    assert (tmp_path / "report" / "figures" / "shift_vs_corruption.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_reuses_finished_entries(tiny_run, conditions, tmp_path, monkeypatch, capsys):
    model, out = tiny_run / "model_final.pt", tmp_path / "shift"
    fogged, dense = f"synthcity:{conditions['fogged']}", f"synthcity:{conditions['dense']}"
    argv = ["--quiet", "shift", "--model", str(model), "--out", str(out), "--workers", "0", "--num-images", "2",
            "--data", fogged, "--data", dense]
    evaluated = []
    real = eval_run.run_evaluation

    def spy(loaded, dataset, *args, **kwargs):
        evaluated.append(dataset.spec)
        if dataset.spec == dense and len(evaluated) == 3:
            raise UserError("simulated failure on the third dataset")
        return real(loaded, dataset, *args, **kwargs)

    monkeypatch.setattr(eval_run, "run_evaluation", spy)
    assert run_cli(argv) == 2
    assert not (out / "shift.json").exists() and (out / "synthcity-fogged" / "metrics.json").is_file()
    fogged_metrics = (out / "synthcity-fogged" / "metrics.json").read_bytes()
    capsys.readouterr()
    assert run_cli(argv) == 0
    assert evaluated[3:] == [dense]  # clean and fogged were finished with the same settings: reused
    assert "reused the finished entries clean, synthcity-fogged" in capsys.readouterr().out
    assert (out / "synthcity-fogged" / "metrics.json").read_bytes() == fogged_metrics
    result = json.loads((out / "shift.json").read_text())
    assert result["entries"][0]["mIoU"] == json.loads(fogged_metrics)["mIoU"]
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert run_cli(argv) == 0
    assert evaluated[4:] == []  # nothing evaluated again, every file byte-identical
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


def test_report_shift_tables_bootstrap_and_figure(tmp_path):
    root = tmp_path / "runs"
    names = ["vit_base", "rsseg"]
    folders = []
    for name in names:
        switches, gain = MODELS[name]
        folders += [make_train(root, name, switches), make_shift(tmp_path, name, gain),
                    make_corrupt(tmp_path, name, gain)]
    out = tmp_path / "report"
    result = build_report(folders, out, resamples=100)
    assert result.baseline == "vit_base"
    shift = _csv(out / "tables" / "shift.csv")
    assert [r["model"] for r in shift] == names
    assert list(shift[0]) == ["model", "clean", "mIoU/synthcity-fogged", "mIoU/synthcity-dense", "mIoU/mean",
                              "% of clean/synthcity-fogged", "% of clean/synthcity-dense", "% of clean/mean"]
    for folder, row in zip(folders[1::3], shift, strict=True):
        recorded = json.loads((folder / "shift.json").read_text())
        assert float(row["mIoU/mean"]) == recorded["mean"] and float(row["clean"]) == recorded["clean"]["mIoU"]
        assert float(row["% of clean/synthcity-dense"]) == recorded["entries"][1]["ratio"]
    intervals = _csv(out / "tables" / "shift_uncertainty.csv")
    assert [(r["model"], r["dataset"]) for r in intervals] == [("rsseg", n) for n in [*ENTRIES, "mean (shifted)"]]
    for r in intervals:  # +10 points on every image of every dataset: every resample gives exactly +10
        assert float(r["Δ mIoU"]) == pytest.approx(10.0, abs=1e-9)
        assert float(r["95% low"]) == pytest.approx(10.0, abs=1e-9) == float(r["95% high"])
        assert r["marks"] == "†‡"  # 12 images per dataset, one training seed
    summary = _csv(out / "tables" / "shift_vs_corruption.csv")
    corrupt = json.loads((folders[2] / "robustness.json").read_text())
    assert float(summary[0]["synthetic corruptions/mPC"]) == corrupt["mPC"]
    assert float(summary[0]["natural shift/% of clean"]) == json.loads((folders[1] / "shift.json").read_text())[
        "mean_ratio"]
    report_json = json.loads((out / "report.json").read_text())
    assert report_json["bootstrap_shift"]["rsseg"]["mean (shifted)"]["estimate"] == pytest.approx(10.0, abs=1e-9)
    readme = (out / "README.md").read_text()
    assert readme.index("Natural shift") > readme.index("Robustness by corruption group")  # beside Cityscapes-C
    assert "figures/shift_vs_corruption.png" in readme
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"}
    build_report(folders, out, resamples=100, overwrite=True)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert after == before  # same inputs, same bytes (figure included)
    assert io.BytesIO(before[Path("figures/shift_vs_corruption.png")]).read(4) == b"\x89PNG"


def test_shift_on_the_acdc_and_dark_zurich_fixtures_goes_into_report(tiny_run, tmp_path):
    """Issue 20's end to end: a SynthCity-trained model, `shift` on real-layout fixtures, then `report`."""
    from repsep.data.fixtures import write_fixture

    acdc = write_fixture(tmp_path / "acdc", "acdc", 0, 1, size=(64, 128))
    dz = write_fixture(tmp_path / "dz", "darkzurich", 0, 2, size=(64, 128))
    specs = [f"acdc:{acdc}:fog", f"acdc:{acdc}:night", f"darkzurich:{dz}"]
    out = tmp_path / "shift"
    argv = ["--quiet", "shift", "--model", str(tiny_run / "model_final.pt"), "--out", str(out), "--workers", "0",
            "--num-images", "2"]
    assert run_cli([*argv, *(a for s in specs for a in ("--data", s))]) == 0
    result = json.loads((out / "shift.json").read_text())
    assert [e["name"] for e in result["entries"]] == ["acdc-fog", "acdc-night", "darkzurich"]
    assert [e["num_images"] for e in result["entries"]] == [1, 1, 2]  # what each fixture holds (at most 2)
    assert [e["settings"]["dataset"] for e in result["entries"]] == specs
    report = build_report([tiny_run, out], tmp_path / "report", resamples=20)
    assert {"shift"} <= {t.stem for t in report.tables}
    row = _csv(tmp_path / "report" / "tables" / "shift.csv")[0]
    assert float(row["mIoU/darkzurich"]) == result["entries"][2]["mIoU"]
    assert float(row["mIoU/mean"]) == pytest.approx(np.mean([e["mIoU"] for e in result["entries"]]), rel=1e-12)
