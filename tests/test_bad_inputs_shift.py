"""Bad inputs of ``shift`` and of ``report`` with shift folders: one-line errors with exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import run_cli
from report_fixtures import MODELS, make_train
from shift_fixtures import ENTRIES, make_condition_sets, make_shift


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def conditions(tmp_path_factory) -> dict[str, Path]:
    return make_condition_sets(tmp_path_factory.mktemp("conditions"))


@pytest.fixture(scope="module")
def finished(tiny_run, conditions, tmp_path_factory) -> tuple[Path, list[str]]:
    """A finished shift folder (2 images of clean and of the fogged set) and the argv that made it."""
    out = tmp_path_factory.mktemp("finished") / "shift"
    argv = ["--quiet", "shift", "--model", str(tiny_run / "model_final.pt"), "--workers", "0", "--num-images", "2",
            "--data", f"synthcity:{conditions['fogged']}"]
    assert run_cli([*argv, "--out", str(out)]) == 0
    return out, argv


def _copy(finished, tmp_path: Path) -> tuple[Path, list[str]]:
    out = tmp_path / "shift"
    shutil.copytree(finished[0], out)
    return out, [*finished[1], "--out", str(out)]


def test_a_dataset_with_another_class_table_is_refused(tiny_run, tmp_path, capsys):
    from repsep.data.synthcity import generate

    ade = generate(tmp_path / "ade", 0, 2, size=(64, 128), seed=0, layout="ade20k", workers=1)
    out = tmp_path / "shift"
    assert run_cli(["shift", "--model", str(tiny_run / "model_final.pt"), "--data", f"ade20k:{ade}",
                    "--out", str(out)]) == 2
    line = _one_line_error(capsys)
    assert f"--data ade20k:{ade}: class table ade20k (150 classes) differs from the one of the model" in line
    assert "(cityscapes, 19 classes)" in line and not out.exists()


def test_a_dataset_given_twice_is_refused(tiny_run, conditions, tmp_path, capsys):
    spec = f"synthcity:{conditions['dense']}"
    assert run_cli(["shift", "--model", str(tiny_run / "model_final.pt"), "--data", spec, "--data", spec,
                    "--out", str(tmp_path / "s")]) == 2
    assert _one_line_error(capsys) == f"error: --data {spec}: given twice"


def test_a_finished_entry_with_other_settings_is_refused(finished, tmp_path, capsys):
    out, argv = _copy(finished, tmp_path)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert run_cli([*argv, "--num-images", "1"]) == 2  # the last --num-images wins
    line = _one_line_error(capsys)
    assert f"{out / 'clean'}: holds a finished --clean-data" in line and "made with other settings (image_ids_sha256:" \
        in line and "pass --overwrite" in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_hand_edited_entry_is_refused(finished, tmp_path, capsys):
    out, argv = _copy(finished, tmp_path)
    metrics = out / "synthcity" / "metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "mIoU": 99.0}))
    assert run_cli(argv) == 2
    assert f"{metrics}: content differs from what repsep-bench eval wrote" in _one_line_error(capsys)


def test_out_holding_an_eval_result_or_a_foreign_json_is_refused(finished, tmp_path, capsys):
    out, argv = _copy(finished, tmp_path)
    assert run_cli([*argv[:-1], str(out / "clean")]) == 2
    assert "holds a repsep-bench eval result, not shift" in _one_line_error(capsys)
    mine = tmp_path / "notes.json"
    mine.write_text("{}")
    assert run_cli([*argv, "--json", str(mine)]) == 2
    assert f"--json {mine}: exists and was not written by repsep-bench shift" in _one_line_error(capsys)
    assert mine.read_text() == "{}"


def _two_models(tmp_path: Path, **changes) -> list[str]:
    folders = []
    for name in ("vit_base", "rsseg"):
        folders.append(make_train(tmp_path / "runs", name, MODELS[name][0]))
        folders.append(make_shift(tmp_path, name, MODELS[name][1], **(changes if name == "rsseg" else {})))
    return [str(f) for f in folders]


def test_report_refuses_shift_results_on_other_images(tmp_path, capsys):
    folders = _two_models(tmp_path, ids_of={"synthcity-dense": [f"other_{i:03d}" for i in range(12)]})
    assert run_cli(["report", *folders, "--out", str(tmp_path / "r")]) == 2
    line = _one_line_error(capsys)
    assert "differ in shift entry synthcity-dense: image_ids_sha256:" in line and "--allow-mismatch" in line
    assert not (tmp_path / "r").exists()


def test_report_refuses_shift_results_on_other_datasets(tmp_path, capsys):
    fewer = dict(list(ENTRIES.items())[:2])
    assert run_cli(["report", *_two_models(tmp_path, entries=fewer), "--out", str(tmp_path / "r")]) == 2
    assert ("differ in shift datasets: clean, synthcity-fogged, synthcity-dense vs clean, synthcity-fogged"
            in _one_line_error(capsys))


def test_report_refuses_two_shift_folders_of_one_model_and_a_broken_one(tmp_path, capsys):
    first = make_shift(tmp_path, "rsseg", MODELS["rsseg"][1])
    second = make_shift(tmp_path, "rsseg", MODELS["rsseg"][1], folder=tmp_path / "again")
    assert run_cli(["report", str(first), str(second), "--out", str(tmp_path / "r")]) == 2
    assert f"{second}: a second shift output of model" in _one_line_error(capsys)
    shift_json = second / "shift.json"
    shift_json.write_text(json.dumps({**json.loads(shift_json.read_text()), "entries": [{"mIoU": 1.0}]}))
    assert run_cli(["report", str(second), "--out", str(tmp_path / "r")]) == 2
    assert f"{shift_json}: not a shift result" in _one_line_error(capsys)
