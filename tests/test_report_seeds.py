"""``report`` on configurations trained with several seeds: grouping, mean ± sd, seed-and-image intervals.

Three configurations (the baseline rung, +aux with the baseline's scores, RSSeg 10 points higher), each trained
with seeds 0, 1, 2 whose clean mIoU is shifted by -2, 0, +2 points (every image, every class): the seed spread
is known (sd 2), the image spread of a difference is zero (constant per-image gains), so an image-only interval
would collapse on the difference and only the seed level can widen it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import report_fixtures
from report_fixtures import areas, make_corrupt, make_eval, make_train, miou, write

from analysis.report import build_report

SEED_SHIFT = np.array([2, 4, 8])  # +2 mIoU points per unit: union per image is [100, 200, 400]
CONFIGS = {"baseline": ((False, False, False), np.array([0, 0, 0])),
           "aux": ((False, False, False), np.array([0, 0, 0])),
           "rsseg": ((True, True, True), np.array([10, 20, 40]))}


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def runs(tmp_path, monkeypatch) -> list[Path]:
    monkeypatch.setattr(report_fixtures, "N", 24)  # enough images (>= 20) for a verdict
    folders = []
    for config, (switches, gain) in CONFIGS.items():
        for seed in (0, 1, 2):
            name = f"{config}-seed{seed}"
            train = make_train(tmp_path / "runs", name, switches, seed=seed)
            if config == "aux":  # the +aux rung: the baseline with its auxiliary head
                text = (train / "config.yaml").read_text().replace("name: baseline_vit", "aux_head: true\n  name: "
                                                                   "baseline_vit")
                write(train / "config.yaml", text)
            shifted = gain + (seed - 1) * SEED_SHIFT
            folders += [train, make_eval(tmp_path, name, shifted), make_corrupt(tmp_path, name, shifted)]
    return folders


def test_configurations_get_mean_sd_and_seed_aware_intervals(runs, tmp_path):
    out = tmp_path / "report"
    result = build_report(runs, out, baseline="baseline-seed0", resamples=400)
    assert result.baseline == "baseline"  # the model named is found in its configuration

    seeds = {r["configuration"]: r for r in _csv(out / "tables" / "seeds.csv")}
    assert list(seeds) == ["baseline", "aux", "rsseg"]
    base = miou(*areas(np.array([0, 0, 0]), 0.0))
    for name, offset in (("baseline", 0.0), ("aux", 0.0), ("rsseg", 10.0)):
        row = seeds[name]
        assert (row["runs"], row["seeds"], row["iterations"]) == ("3", "0, 1, 2", "1000")
        assert float(row["clean mIoU/mean"]) == pytest.approx(base + offset, abs=1e-9)
        assert float(row["clean mIoU/sd"]) == pytest.approx(2.0, abs=1e-9)  # seeds at -2, 0, +2 points
        assert float(row["training PMACs"]) > 0
    assert float(seeds["rsseg"]["training PMACs"]) > float(seeds["baseline"]["training PMACs"])

    unc = {(r["configuration"], r["setting"]): r for r in _csv(out / "tables" / "uncertainty.csv")}
    rs = unc[("rsseg", "clean")]
    assert (rs["seeds"], rs["baseline seeds"], rs["images"], rs["marks"]) == ("3", "3", "24", "")
    low, estimate, high = (float(rs[k]) for k in ("95% low", "Δ mIoU", "95% high"))
    assert estimate == pytest.approx(10.0, abs=1e-9)
    # only the seeds vary: resampled seed means of {-2, 0, 2} on both sides give a spread of several points
    assert low < 9.0 and high > 11.0 and low > 0
    assert rs["significant"] == "yes"
    same = unc[("aux", "clean")]
    assert float(same["Δ mIoU"]) == pytest.approx(0.0, abs=1e-9)
    assert float(same["95% low"]) < 0 < float(same["95% high"]) and same["significant"] == "no"
    assert unc[("rsseg", "noise")]["seeds"] == "3"  # corruption groups are seed-aware too

    ablation = _csv(out / "tables" / "ablation.csv")
    assert [(r["rung"], r["configuration"], r["seeds"]) for r in ablation] == [
        ("baseline", "baseline", "3"), ("+aux", "aux", "3"), ("+DCA", "rsseg", "3")]
    assert float(ablation[2]["Δ prev"]) == pytest.approx(10.0, abs=1e-9)
    assert float(ablation[2]["Δ prev low"]) < 9.0 < 11.0 < float(ablation[2]["Δ prev high"])


def test_one_config_trained_twice_with_one_seed_is_two_configurations(tmp_path):
    gain = np.array([0, 0, 0])
    folders = []
    for exp in ("a", "b"):
        name = f"vit-seed0-{exp}"
        folders += [make_train(tmp_path / exp, name, (False, False, False)), make_eval(tmp_path, name, gain)]
    build_report(folders, tmp_path / "r", resamples=5)
    assert not (tmp_path / "r" / "tables" / "seeds.csv").exists()
    assert [r["configuration"] for r in _csv(tmp_path / "r" / "tables" / "uncertainty.csv")] == ["vit-seed0-b"]


def test_training_compute_counts_the_training_heads_per_image():
    """Training-mode forward GMACs per image: the deployed model's plus the auxiliary heads', batch independent; a
    decoder with batch norm on 1x1 pooled maps (UperNet's PPM) counts too (training mode needs a batch > 1)."""
    from repsep.models.profile import model_info, training_gmacs
    from repsep.models.registry import model_config

    aux = model_config("baseline_vit", size="tiny", aux_head=True)
    plain = model_config("baseline_vit", size="tiny")
    assert training_gmacs(plain, (64, 128)) == pytest.approx(model_info(plain, (64, 128))["gmacs"]["total"])
    assert training_gmacs(aux, (64, 128)) > model_info(aux, (64, 128))["gmacs"]["total"]
    assert training_gmacs(model_config("upernet_vit", size="tiny"), (64, 128)) > 0
