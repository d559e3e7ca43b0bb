"""``repsep-bench data synth`` and ``data check``: outputs, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from repsep.cli import main


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "sc"
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "synth", "--out", str(out), "--num-train", "1", "--num-val", "2", "--size", "48x96",
              "--seed", "3", "--workers", "1", "--thin-share", "0.7"])
    assert exit_info.value.code in (0, None)
    return out


def test_synth_writes_meta_with_knobs(synth):
    meta = json.loads((synth / "synthcity_meta.json").read_text())
    assert meta["num_val"] == 2 and meta["size"] == [48, 96] and meta["knobs"]["thin_share"] == 0.7


def test_check_prints_table_and_json(synth, capsys, tmp_path):
    code, out, _ = _run(capsys, "data", "check", str(synth), "--split", "val", "--json", str(tmp_path / "h.json"))
    assert code in (0, None)
    assert "road" in out and "bicycle" in out and "of 19 classes present" in out
    hist = json.loads((tmp_path / "h.json").read_text())
    assert hist["num_images"] == 2 and hist["image_sizes"] == [[48, 96]]
    pixels = sum(row["pixels"] for row in hist["classes"].values()) + hist["ignored_pixels"]
    assert pixels == hist["total_pixels"] == 2 * 48 * 96


@pytest.mark.parametrize("argv, fragment", [
    (["data", "check", "{missing}"], "root folder not found"),
    (["data", "check", "{synth}", "--split", "test"], "folder not found"),
    (["data", "check", "{synth}", "--layout", "kitti"], "--layout kitti"),
    (["data", "synth", "--out", "{synth}", "--seed", "4"], "already exists"),
    (["data", "synth", "--out", "{new}", "--size", "big"], "--size big"),
    (["data", "synth", "--out", "{new}", "--lighting-range", "2"], "--lighting-range"),
])
def test_bad_input_is_one_line_exit_2(synth, capsys, tmp_path, argv, fragment):
    argv = [a.format(synth=synth, missing=tmp_path / "missing", new=tmp_path / "new") for a in argv]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and fragment in err
    assert "Traceback" not in err


def test_corrupt_label_via_subprocess(synth, tmp_path):
    bad = synth.parent / "bad"
    subprocess.run(["cp", "-r", str(synth), str(bad)], check=True)
    label = bad / "gtFine/val/synthville/synthville_000001_000019_gtFine_labelTrainIds.png"
    Image.fromarray(np.full((48, 96), 40, np.uint8)).save(label)
    proc = subprocess.run([sys.executable, "-m", "repsep.cli", "data", "check", str(bad)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {label}: values [40] are not Cityscapes trainIds "
                                                "(0..18, 255 = ignore)"]
