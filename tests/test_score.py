"""`repsep-bench score`: predictions written to PNGs by an external script give the same numbers as the in-process
sweep of the same model (identical mIoU per cell and per-image areas), in train ids and in Cityscapes label ids,
with the model identity over the prediction files, and the result goes into `report` beside the sweep."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from cli_helpers import run_cli
from score_fixtures import SWEEP, as_label_ids, make_scored_setup

from repsep.io import read_json


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return make_scored_setup(tmp_path_factory.mktemp("score"))


def _score(setup, pred, out, *extra) -> int:
    return run_cli(["score", "--pred", str(pred), "--data", setup["data"], *SWEEP, "--from-disk", str(setup["tree"]),
                    "--out", str(out), *extra])


def _same_numbers(a, b) -> None:
    ra, rb = read_json(a / "robustness.json"), read_json(b / "robustness.json")
    for key in ("clean", "cells", "per_corruption", "per_group", "mPC", "rPC", "clean_metrics", "num_images"):
        assert ra[key] == rb[key], key
    na, nb = np.load(a / "per_image.npz"), np.load(b / "per_image.npz")
    assert sorted(na.files) == sorted(nb.files)
    for key in na.files:
        if key != "settings":
            assert np.array_equal(na[key], nb[key]), key


def test_scored_predictions_equal_the_in_process_sweep(setup, tmp_path):
    out = tmp_path / "score"
    assert _score(setup, setup["pred"], out) == 0
    _same_numbers(out, setup["sweep"])
    r, ref = read_json(out / "robustness.json"), read_json(setup["sweep"] / "robustness.json")
    assert 0 < r["clean"] < 100 and r["cells"]["fog"]["1"] != r["cells"]["contrast"]["1"]  # not a trivial model
    s, sref = r["settings"], ref["settings"]
    assert s["backend"] == "predictions" and sref["backend"] == "reference"
    same = {k for k in sref if k not in ("model_sha256", "backend")}
    assert {k: s[k] for k in same} == {k: sref[k] for k in same}  # comparable with the sweep field by field
    files = sorted(p for p in setup["pred"].rglob("*.png"))
    lines = "".join(f"{p.relative_to(setup['pred']).as_posix()}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
                    for p in files)
    assert len(files) == 9 and s["model_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert read_json(out / "manifest.json")["kind"] == "corrupt"
    assert (out / "robustness.md").read_text().splitlines()[2].startswith("| fog | weather |")


def test_label_id_predictions_score_the_same(setup, tmp_path):
    pred = tmp_path / "pred_ids"
    as_label_ids(setup["pred"], pred)
    assert _score(setup, pred, tmp_path / "ids", "--label-ids") == 0
    _same_numbers(tmp_path / "ids", setup["sweep"])
    assert read_json(tmp_path / "ids" / "robustness.json")["prediction_values"] == "label ids"


def test_reference_results_and_report_accept_the_scored_folder(setup, tmp_path):
    out = tmp_path / "score"
    assert _score(setup, setup["pred"], out, "--reference-results", str(setup["sweep"])) == 0
    r = read_json(out / "robustness.json")
    assert r["mCE"] == pytest.approx(100.0) and r["CE"]["fog"] == pytest.approx(100.0)  # the same model
    assert run_cli(["report", str(setup["sweep"]), str(out), "--out", str(tmp_path / "report"),
                    "--resamples", "20"]) == 0
    text = (tmp_path / "report" / "README.md").read_text()
    assert "score" in text and "sweep" in text


def test_a_mismatched_reference_is_refused_before_any_prediction_is_read(setup, tmp_path, capsys):
    ref = tmp_path / "ref"
    ref.mkdir()
    swept = read_json(setup["sweep"] / "robustness.json")
    swept["settings"]["base_seed"] += 1  # swept with other corruption pixels
    (ref / "robustness.json").write_text(json.dumps(swept))
    empty = tmp_path / "no_predictions"  # reading predictions first would fail on this instead
    empty.mkdir()
    capsys.readouterr()
    assert _score(setup, empty, tmp_path / "score", "--reference-results", str(ref)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --reference-results: ") and "differ in base_seed" in err[0]
    assert not (tmp_path / "score").exists()
