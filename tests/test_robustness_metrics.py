"""Robustness metrics against hand-computed values."""

from __future__ import annotations

import pytest

from corruptions.metrics import ReferenceResults, load_reference, robustness_summary
from repsep.errors import UserError
from repsep.io import atomic_write_json

CELLS = {"gaussian_noise": {1: 60.0, 2: 40.0}, "fog": {1: 70.0, 2: 50.0}}
REF = ReferenceResults(source="ref", clean=75.0, cells={"gaussian_noise": {1: 50.0, 2: 30.0},
                                                        "fog": {1: 60.0, 2: 60.0}, "snow": {1: 1.0, 2: 2.0}})


def test_means_mpc_rpc():
    r = robustness_summary(80.0, CELLS, ["gaussian_noise", "fog"], [1, 2])
    assert r["per_corruption"] == {"gaussian_noise": 50.0, "fog": 60.0}
    assert r["per_group"] == {"noise": 50.0, "weather": 60.0}
    assert r["mPC"] == 55.0
    assert r["rPC"] == pytest.approx(68.75)  # 100 * 55 / 80
    assert r["CE"] is None and r["mCE"] is None


def test_ce_and_relative_ce():
    r = robustness_summary(80.0, CELLS, ["gaussian_noise", "fog"], [1, 2], reference=REF)
    # CE_gn = (0.4 + 0.6) / (0.5 + 0.7); CE_fog = (0.3 + 0.5) / (0.4 + 0.4)
    assert r["CE"] == pytest.approx({"gaussian_noise": 100 / 1.2, "fog": 100.0})
    assert r["mCE"] == pytest.approx((100 / 1.2 + 100) / 2)
    # rel_gn = ((0.4-0.2) + (0.6-0.2)) / ((0.5-0.25) + (0.7-0.25)); rel_fog = (0.1 + 0.3) / (0.15 + 0.15)
    assert r["rel_CE"] == pytest.approx({"gaussian_noise": 100 * 0.6 / 0.7, "fog": 100 * 0.4 / 0.3})
    assert r["rel_mCE"] == pytest.approx((100 * 0.6 / 0.7 + 100 * 0.4 / 0.3) / 2)


def test_subset_of_severities_uses_only_those():
    r = robustness_summary(80.0, CELLS, ["fog"], [2], reference=REF)
    assert r["mPC"] == 50.0 and r["CE"] == pytest.approx({"fog": 100 * 0.5 / 0.4})


def test_reference_unchanged_by_corruption_gives_undefined_relative_ce():
    ref = ReferenceResults(source="ref", clean=60.0, cells={"fog": {1: 60.0, 2: 60.0}})
    r = robustness_summary(80.0, CELLS, ["fog"], [1, 2], reference=ref)
    assert r["rel_CE"]["fog"] is None and r["CE"]["fog"] == pytest.approx(100 * 0.8 / 0.8)
    assert "does not rise" in r["rel_CE_undefined"]["fog"]
    assert r["rel_mCE"] is None and "fog" in r["rel_mCE_undefined"] and r["mCE"] == pytest.approx(100.0)


def test_reference_that_improves_is_undefined_not_sign_flipped():
    ref = ReferenceResults(source="ref", clean=60.0, cells={"fog": {1: 62.0, 2: 61.0}})  # error falls
    r = robustness_summary(80.0, CELLS, ["fog"], [1, 2], reference=ref)
    assert r["rel_CE"] == {"fog": None} and "-1.50 mIoU points" in r["rel_CE_undefined"]["fog"]


def test_reference_that_barely_degrades_is_flagged_not_10630_percent():
    # reference: clean 50.0, corrupted 49.9 (0.1 points); model: clean 60, corrupted 49.37: the plain ratio is
    # 100 * 0.1063 / 0.001 = 10630 %; the rise 0.1 < MIN_REFERENCE_RISE makes it undefined
    ref = ReferenceResults(source="ref", clean=50.0, cells={"fog": {1: 49.9}})
    r = robustness_summary(60.0, {"fog": {1: 49.37}}, ["fog"], [1], reference=ref)
    assert r["rel_CE"] == {"fog": None} and r["rel_mCE"] is None
    assert "rises only 0.10 mIoU points" in r["rel_CE_undefined"]["fog"]
    assert r["CE"]["fog"] == pytest.approx(100 * (1 - 0.4937) / (1 - 0.499))  # CE itself is fine


def test_perfect_reference_gives_undefined_ce_not_an_exception():
    ref = ReferenceResults(source="ref", clean=100.0, cells={"fog": {1: 100.0, 2: 100.0}})
    r = robustness_summary(80.0, CELLS, ["fog"], [1, 2], reference=ref)
    assert r["CE"] == {"fog": None} and r["mCE"] is None and "perfect" in r["CE_undefined"]["fog"]
    assert r["rel_CE"] == {"fog": None} and "perfect" in r["mCE_undefined"]


def test_missing_cells_are_errors_not_zeros():
    with pytest.raises(UserError, match="no result for fog severity 3"):
        robustness_summary(80.0, CELLS, ["fog", "gaussian_noise"], [1, 2, 3])
    with pytest.raises(UserError, match="ref: no result for speckle_noise severity 1"):
        robustness_summary(80.0, {**CELLS, "speckle_noise": {1: 5.0}}, ["speckle_noise"], [1], reference=REF)


def test_load_reference_round_trip(tmp_path):
    atomic_write_json(tmp_path / "robustness.json", {"clean": 75.0, "cells": {"fog": {"1": 60.0, "2": 55.5}}})
    ref = load_reference(tmp_path)
    assert ref.clean == 75.0 and ref.cells == {"fog": {1: 60.0, 2: 55.5}}
    atomic_write_json(tmp_path / "bad.json", {"mIoU": 3})
    with pytest.raises(UserError, match="bad.json: not a robustness.json"):
        load_reference(tmp_path / "bad.json")
    with pytest.raises(UserError, match="file not found"):
        load_reference(tmp_path / "missing")
