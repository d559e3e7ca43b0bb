"""Comparability checks (issue 18 item 1): settings compared field by field; `report` and
`corrupt --reference-results` refuse mismatches in one line unless --allow-mismatch, which shows every difference."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli
from corruption_fixtures import make_tiny_model
from report_fixtures import MODELS, make_corrupt, make_eval, make_runs, settings

from analysis.report import build_report
from repsep.comparability import CORRUPT_FIELDS, EVAL_FIELDS, differences, first_difference
from repsep.errors import UserError


def test_first_difference_names_the_field_and_both_values():
    a = settings("a", corrupt=True)
    assert first_difference(a, dict(a), CORRUPT_FIELDS) is None
    b = {**a, "base_seed": 1, "severities": [1, 2, 3]}
    assert first_difference(a, b, CORRUPT_FIELDS) == "base_seed: 0 vs 1"
    assert differences(a, b, CORRUPT_FIELDS) == ["base_seed: 0 vs 1", "severities: [1,2] vs [1,2,3]"]


def test_cells_and_inference_are_compared_one_by_one():
    a = settings("a", corrupt=True)
    b = json.loads(json.dumps(a))
    b["cell_backends"]["shot_noise/2"] = "torch:cuda"
    b["cell_backends"]["zoom_blur/1"] = "torch"  # a cell only one of them has is not a difference
    b["inference"].update(mode="slide", crop=(64, 64))  # a tuple equals the list JSON gives back
    assert differences(a, b, CORRUPT_FIELDS) == ["inference.crop: null vs [64,64]", "inference.mode: whole vs slide",
                                                 "cell_backends[shot_noise/2]: reference vs torch:cuda"]
    assert first_difference({**a, "inference": {**a["inference"], "crop": [64, 64]}},
                            {**a, "inference": {**a["inference"], "crop": (64, 64)}}, EVAL_FIELDS) is None
    assert first_difference({"split": "val"}, {}, ("split",)) == "split: val vs missing"


def _pair(tmp_path, **changes):
    return [make_corrupt(tmp_path, "vit_base", MODELS["vit_base"][1]),
            make_corrupt(tmp_path, "rsseg", MODELS["rsseg"][1], **changes)]


@pytest.mark.parametrize("changes, field", [
    ({"base_seed": 3}, "base_seed: 0 vs 3"),
    ({"severities": [1, 2, 3]}, "severities: [1,2] vs [1,2,3]"),
    ({"dataset_fingerprint": "ffffffffffffffff"}, "dataset_fingerprint: 0123456789abcdef vs ffffffffffffffff"),
    ({"cell_backends": {"gaussian_noise/1": "torch"}}, "cell_backends[gaussian_noise/1]: reference vs torch"),
    ({"split": "train"}, "split: val vs train"),
])
def test_report_refuses_mismatched_sweeps_naming_the_first_field(tmp_path, changes, field):
    folders = _pair(tmp_path, **changes)
    with pytest.raises(UserError) as exc:
        build_report(folders, tmp_path / "r", resamples=10)
    message = str(exc.value)
    assert "\n" not in message and field in message and str(folders[0]) in message and str(folders[1]) in message
    assert not (tmp_path / "r").exists()


def test_allow_mismatch_shows_every_difference_above_the_tables(tmp_path, capsys):
    folders = _pair(tmp_path, base_seed=3, severities=[1, 2, 3])
    assert run_cli(["report", *map(str, folders), "--out", str(tmp_path / "r"), "--resamples", "10",
                    "--allow-mismatch"]) == 0
    readme = (tmp_path / "r" / "README.md").read_text()
    warning = readme.index("**Warning: these results are not comparable.**")
    assert warning < readme.index("## Tables")
    assert "base_seed: 0 vs 3" in readme[warning:] and "severities: [1,2] vs [1,2,3]" in readme[warning:]
    err = capsys.readouterr().err
    assert "warning: " in err and "base_seed: 0 vs 3" in err
    assert json.loads((tmp_path / "r" / "report.json").read_text())["warnings"][1].endswith(
        "severities: [1,2] vs [1,2,3]")


def test_mismatched_inference_of_evals_is_refused(tmp_path):
    folders = [make_eval(tmp_path, "vit_base", MODELS["vit_base"][1]),
               make_eval(tmp_path, "rsseg", MODELS["rsseg"][1], precision="fp16")]
    with pytest.raises(UserError, match="differ in precision: fp32 vs fp16; pass --allow-mismatch"):
        build_report(folders, tmp_path / "r", resamples=10)


def test_result_without_settings_is_refused_unless_allowed(tmp_path):
    folders = [make_eval(tmp_path, "vit_base", MODELS["vit_base"][1]),
               make_eval(tmp_path, "rsseg", MODELS["rsseg"][1], settings=None)]
    with pytest.raises(UserError, match=r"eval_rsseg: no settings recorded \(made by an older version\); rerun it"):
        build_report(folders, tmp_path / "r", resamples=10)
    result = build_report(folders, tmp_path / "r", resamples=10, allow_mismatch=True)
    assert any("no settings recorded" in w for w in result.warnings)


def test_sweeps_of_different_datasets_sharing_image_ids_are_not_paired(tmp_path):
    # issue 22: same ids, another dataset; allowed, the tables are made but no paired bootstrap
    folders = _pair(tmp_path, dataset_fingerprint="ffffffffffffffff")
    result = build_report(folders, tmp_path / "r", resamples=10, allow_mismatch=True)
    assert not (tmp_path / "r" / "tables" / "uncertainty.csv").exists()
    assert any("not paired in the bootstrap" in w for w in result.warnings)


def test_fixture_runs_are_comparable(tmp_path):
    assert build_report(make_runs(tmp_path), tmp_path / "r", resamples=10).warnings == []


# ---- corrupt --reference-results ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    make_tiny_model(tmp)
    return tmp


def _reference(folder, **settings_changes):
    folder.mkdir(parents=True, exist_ok=True)
    data = {"clean": 40.0, "cells": {"fog": {"1": 20.0}}}
    if settings_changes.get("settings", True) is not None:
        data["settings"] = {**settings("ref", corrupt=True), **settings_changes}
    (folder / "robustness.json").write_text(json.dumps(data))
    return folder


def _corrupt(tiny, reference, *extra):
    return run_cli(["corrupt", "--model", str(tiny / "model.pt"), "--corruptions", "fog", "--severities", "1",
                    "--num-images", "2", "--workers", "0", "--reference-results", str(reference),
                    "--out", str(tiny / "out"), *extra])


def test_corrupt_refuses_a_mismatched_reference_before_work(tiny, capsys):
    ref = _reference(tiny / "ref_seed", base_seed=5)
    assert _corrupt(tiny, ref) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --reference-results: ") and "\n" not in err
    assert "differ in dataset_fingerprint" in err  # the hand-made reference is of another dataset: first field
    assert not (tiny / "out" / "cells").exists()


def test_corrupt_refuses_a_reference_without_settings(tiny, capsys):
    ref = _reference(tiny / "ref_old", settings=None)
    assert _corrupt(tiny, ref) == 2
    assert "no settings recorded (made by an older version); rerun it" in capsys.readouterr().err


def test_corrupt_allow_mismatch_uses_the_reference_and_warns(tiny, capsys):
    ref = _reference(tiny / "ref_seed2", base_seed=5)
    assert _corrupt(tiny, ref, "--allow-mismatch") == 0
    err = capsys.readouterr().err
    assert "warning: --reference-results: " in err and "base_seed: 5 vs 0" in err
    result = json.loads((tiny / "out" / "robustness.json").read_text())
    assert result["mCE"] is not None or result["mCE_undefined"]
