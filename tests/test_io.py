"""repsep.io: atomic writes, deterministic npz/JSON, output-folder rules."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from repsep.errors import UserError
from repsep.io import (
    atomic_open,
    atomic_write_json,
    atomic_write_npz,
    dumps_json,
    make_output_dir,
    read_json,
    refuse_finished_output,
)


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half of the new cont")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_written_file_gets_umask_permissions_not_mkstemp_0600(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~umask


def test_json_is_strict_and_sorted():
    assert dumps_json({"b": float("nan"), "a": (1, 2)}) == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": null\n}\n'


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(UserError, match=f"{bad}: not valid JSON"):
        read_json(bad)
    with pytest.raises(UserError, match="file not found"):
        read_json(tmp_path / "missing.json")


def test_npz_is_byte_stable_and_loadable(tmp_path):
    arrays = {"embedding": np.arange(6, dtype=np.float32).reshape(3, 2), "ids": np.asarray(["a", "bb", "c"])}
    atomic_write_npz(tmp_path / "a.npz", arrays)
    atomic_write_npz(tmp_path / "b.npz", dict(reversed(arrays.items())))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = np.load(tmp_path / "a.npz", allow_pickle=False)
    assert np.array_equal(back["embedding"], arrays["embedding"]) and back["ids"].tolist() == ["a", "bb", "c"]


def test_finished_output_is_refused_unless_overwrite(tmp_path):
    refuse_finished_output(tmp_path / "new", overwrite=False)  # nothing there yet
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(UserError, match="already holds a finished result"):
        refuse_finished_output(tmp_path, overwrite=False)
    refuse_finished_output(tmp_path, overwrite=True)


def test_output_dir_below_a_file_is_bad_input(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create the output folder"):
        make_output_dir(tmp_path / "file" / "out")
    assert make_output_dir(tmp_path / "a" / "b").is_dir()
