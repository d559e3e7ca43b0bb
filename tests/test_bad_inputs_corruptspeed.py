"""Bad REPSEP_CORRUPT_THREADS (the corruption thread-count override): one stderr line, exit 2, before any work."""

from __future__ import annotations

import pytest
from cli_helpers import run_cli


@pytest.mark.parametrize("value", ["0", "two", "-3"])
def test_corrupt_refuses_a_bad_thread_override_before_loading_anything(value, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPSEP_CORRUPT_THREADS", value)
    missing = tmp_path / "no_model.pt"  # never read: the option check comes first
    code = run_cli(["corrupt", "--model", str(missing), "--corruptions", "fog", "--severities", "1",
                    "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"error: REPSEP_CORRUPT_THREADS={value!r}: must be a thread count >= 1 or 'torch'"]
    assert not (tmp_path / "out").exists()


def test_materialize_refuses_a_bad_thread_override_before_writing(tmp_path, monkeypatch, capsys, synthcity_small):
    monkeypatch.setenv("REPSEP_CORRUPT_THREADS", "0")
    code = run_cli(["corruptions", "materialize", "--data", f"synthcity:{synthcity_small}", "--corruptions", "fog",
                    "--severities", "1", "--workers", "1", "--out", str(tmp_path / "tree")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: REPSEP_CORRUPT_THREADS='0': must be a thread count >= 1 or 'torch'"]
    assert not (tmp_path / "tree").exists()
