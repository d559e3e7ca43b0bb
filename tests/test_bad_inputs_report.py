"""Issue 22, the report's cases: ownership of --out, models identified by weights, undefined mIoU; one-line
errors with exit 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from report_fixtures import MODELS, make_eval, make_runs, make_train, sha, weights

from analysis.report import build_report


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_overwrite_never_deletes_a_file_report_did_not_write(tmp_path, capsys):
    runs = make_runs(tmp_path)
    out = tmp_path / "thesis"
    assert run_cli(["report", *map(str, runs[:2]), "--out", str(out), "--resamples", "5"]) == 0
    (out / "chapter1.tex").write_text("my thesis")
    (out / "figures" / "mine.png").write_bytes(b"mine")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert run_cli(["report", *map(str, runs), "--out", str(out), "--resamples", "5", "--overwrite"]) == 2
    line = _one_line_error(capsys)
    assert "chapter1.tex" in line and "did not write" in line
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (out / "chapter1.tex").read_text() == "my thesis"


def test_overwrite_replaces_only_its_own_files(tmp_path):
    runs = make_runs(tmp_path)
    out = tmp_path / "r"
    build_report(runs, out, resamples=5)
    build_report(runs[:2], out, resamples=5, overwrite=True)  # fewer tables: the old ones are gone
    assert not (out / "tables" / "robustness.csv").exists() and (out / "tables" / "main.csv").is_file()


def test_a_folder_without_a_marker_is_not_replaced(tmp_path, capsys):
    runs = make_runs(tmp_path)
    out = tmp_path / "old_report"
    out.mkdir()
    (out / "README.md").write_text("an old report, or someone's notes")
    assert run_cli(["report", *map(str, runs[:2]), "--out", str(out), "--overwrite"]) == 2
    assert "README.md" in _one_line_error(capsys)
    assert (out / "README.md").read_text() == "an old report, or someone's notes"


@pytest.mark.parametrize("which", ["input", "parent"])
def test_an_input_cannot_be_the_output(tmp_path, capsys, which):
    runs = make_runs(tmp_path)
    out = runs[1] if which == "input" else runs[1].parent
    before = sorted(out.rglob("*"))
    assert run_cli(["report", *map(str, runs[:3]), "--out", str(out), "--overwrite"]) == 2
    assert "is an input of this command" in _one_line_error(capsys)
    assert sorted(out.rglob("*")) == before


def test_two_models_whose_folders_share_a_name_are_two_rows(tmp_path):
    # exp1/runs/vit and exp2/runs/vit: different weights -> two rows with distinguishable names
    gain = MODELS["vit_base"][1]
    trains = [make_train(tmp_path / exp / "runs", "vit", (False, False, False)) for exp in ("exp1", "exp2")]
    (trains[1] / "model_final.pt").write_bytes(weights("other vit"))
    evals = [make_eval(tmp_path, "vit", gain, folder=tmp_path / "e1"),
             make_eval(tmp_path, "vit", gain, folder=tmp_path / "e2", model_sha256=sha(weights("other vit")))]
    result = build_report([*trains, *evals], tmp_path / "r", resamples=5)
    names = [r["model"] for r in _csv(tmp_path / "r" / "tables" / "main.csv")]
    assert names == ["exp1/runs/vit", "exp2/runs/vit"]
    assert result.baseline == "exp1/runs/vit"
    assert [r["configuration"] for r in _csv(tmp_path / "r" / "tables" / "uncertainty.csv")] == ["exp2/runs/vit"]


def test_the_same_model_reached_twice_is_one_row(tmp_path):
    # a train folder and an eval that names a copy of its checkpoint elsewhere: same sha256, one model
    train = make_train(tmp_path / "runs", "vit_base", (False, False, False))
    ev = make_eval(tmp_path, "copied_vit", MODELS["vit_base"][1], model_sha256=sha(weights("vit_base")))
    build_report([train, ev], tmp_path / "r", resamples=5)
    rows = _csv(tmp_path / "r" / "tables" / "main.csv")
    assert [r["model"] for r in rows] == ["vit_base"] and rows[0]["mIoU SS"] != ""


@pytest.mark.parametrize("value", [float("nan"), None])
def test_an_undefined_miou_is_shown_as_undefined(tmp_path, value):
    # issue 22: an all-ignore label set gives mIoU NaN (null in strict JSON); report crashed on it
    runs = make_runs(tmp_path)
    metrics = runs[1] / "metrics.json"
    data = json.loads(metrics.read_text())
    data["mIoU"] = value
    metrics.write_text(json.dumps(data))
    inter = np.load(runs[1] / "per_image.npz")
    np.savez(runs[1] / "per_image.npz", **{k: (np.zeros_like(inter[k]) if k in ("intersect", "union") else inter[k])
                                          for k in inter.files})
    build_report(runs, tmp_path / "r", resamples=5)
    rows = {r["model"]: r for r in _csv(tmp_path / "r" / "tables" / "main.csv")}
    assert rows["vit_base"]["mIoU SS"] == "undefined"
    assert "| vit_base | vit_tiny_patch16_384 | 5.00 | 1.50 | undefined |" in (tmp_path / "r" / "README.md").read_text()


def test_cli_refuses_incomparable_inputs_in_one_line(tmp_path, capsys):
    from report_fixtures import make_corrupt

    folders = [make_corrupt(tmp_path, "vit_base", MODELS["vit_base"][1]),
               make_corrupt(tmp_path, "rsseg", MODELS["rsseg"][1], base_seed=3)]
    assert run_cli(["report", *map(str, folders), "--out", str(tmp_path / "r")]) == 2
    line = _one_line_error(capsys)
    assert line.endswith("differ in base_seed: 0 vs 3; pass --allow-mismatch to compare them anyway")
    assert not (tmp_path / "r").exists()
