"""The study file, its plan (equal budget, every seed, baselines first) and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.study.runner import plan
from analysis.study.spec import load_study
from repsep.errors import UserError

STUDY = """
data: synthcity
iterations: 40
seeds: [0, 1]
baseline: baseline
train_set: [schedule.val_interval=20]
models:
  rsseg: {recipe: synthcity_tiny_rsseg}
  baseline: {recipe: synthcity_tiny_baseline, set: [model.width=32]}
corrupt: {models: [baseline, rsseg], num_images: 4, severities: "1"}
analyze: {num_images: 4}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_plan_trains_every_model_and_seed_at_one_budget(tmp_path):
    study = load_study(_write(tmp_path, STUDY))
    steps = plan(study, tmp_path / "out")
    labels = [s.label for s in steps]
    assert labels[:4] == ["train baseline seed 0", "train baseline seed 1", "train rsseg seed 0",
                          "train rsseg seed 1"]
    assert labels[-2:] == ["analyze seed 0", "report"]
    trains = [s.argv for s in steps if s.kind == "train"]
    assert all("schedule.iters=40" in argv and "data.spec=synthcity" in argv for argv in trains)
    assert [argv[argv.index("seed=0") if "seed=0" in argv else argv.index("seed=1")] for argv in trains] == [
        "seed=0", "seed=1", "seed=0", "seed=1"]
    rsseg_corrupt = next(s for s in steps if s.label == "corrupt rsseg seed 1")
    assert str(tmp_path / "out" / "runs" / "baseline-seed1" / "corrupt") in rsseg_corrupt.argv  # CE vs same seed
    assert steps[-1].argv.count("--baseline") == 1
    runs = tmp_path / "out" / "runs"
    by_label = {s.label: s for s in steps}  # what each step waits for when steps run side by side (--jobs)
    assert all(not s.needs for s in steps if s.kind == "train")
    assert by_label["eval rsseg seed 1"].needs == (runs / "rsseg-seed1",)
    assert rsseg_corrupt.needs == (runs / "rsseg-seed1", runs / "baseline-seed1" / "corrupt")
    assert by_label["corrupt baseline seed 0"].needs == (runs / "baseline-seed0",)
    assert by_label["analyze seed 0"].needs == (runs / "baseline-seed0", runs / "rsseg-seed0")
    assert set(steps[-1].needs) == {s.out for s in steps[:-1]}


def test_bad_study_values(tmp_path):
    cases = [
        ("iterations: 40", "iterations: 0", "iterations: expected a positive integer"),
        ("seeds: [0, 1]", "seeds: [0, 0]", "seeds: seeds repeat"),
        ("train_set: [schedule.val_interval=20]", "train_set: [seed=3]", "set by the study"),
        ("baseline: baseline", "baseline: nosuch", "baseline: 'nosuch' is not one of the models"),
        ("analyze: {num_images: 4}", "analyze: {num_images: 4, seeds: [7]}", "analyze.seeds"),
        ("data: synthcity", "dataa: synthcity", "unknown key 'dataa'"),
        ('severities: "1"}', 'severities: "1", corruptions: [fog, smog]}', "corrupt.corruptions: .*smog"),
    ]
    for old, new, expected in cases:
        path = _write(tmp_path, STUDY.replace(old, new))
        with pytest.raises(UserError, match=expected) as info:
            load_study(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_committed_ladder_study_matches_the_ladder():
    """studies/synthcity_ladder.yaml trains the rungs of repsep.models.registry.LADDER, in order."""
    from repsep.config import load_config
    from repsep.models.registry import ladder_configs

    study = load_study(Path(__file__).resolve().parents[1] / "studies" / "synthcity_ladder.yaml")
    rungs = [m for m in study.models if m.name != "upernet_vit"]
    built = [load_config(m.recipe, list(m.overrides)).model for m in rungs]
    expected = [cfg for _, cfg in ladder_configs("tiny", num_classes=19, img_size=(128, 256))]
    assert built == expected


def test_corruptions_as_a_yaml_list_become_the_corrupt_option(tmp_path):
    text = STUDY.replace('severities: "1"}', 'severities: "1", corruptions: [fog, gaussian_noise]}')
    steps = plan(load_study(_write(tmp_path, text)), tmp_path / "out")
    argv = next(s.argv for s in steps if s.kind == "corrupt")
    assert argv[argv.index("--corruptions") + 1] == "fog,gaussian_noise"
