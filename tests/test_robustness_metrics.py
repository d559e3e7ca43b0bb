"""Robustness metrics against hand-computed values."""

from __future__ import annotations

import math

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


def test_reference_unchanged_by_corruption_gives_nan_relative_ce():
    ref = ReferenceResults(source="ref", clean=60.0, cells={"fog": {1: 60.0, 2: 60.0}})
    r = robustness_summary(80.0, CELLS, ["fog"], [1, 2], reference=ref)
    assert math.isnan(r["rel_CE"]["fog"]) and r["CE"]["fog"] == pytest.approx(100 * 0.8 / 0.8)


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
