"""Messages and process behaviour of ``repsep-bench``: one ``error:`` line for OS errors and click usage errors,
the error on a line of its own after a progress bar, ``--quiet``, and SIGTERM cleaning temporary files."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import run_cli

from repsep import progress
from repsep.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def _tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


def test_disk_full_is_one_line_naming_the_file_and_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    target = tmp_path / "models.json"
    assert run_cli(["models", "list", "--json", str(target)]) == 0
    before = target.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("repsep.io.os.fsync", full)
    capsys.readouterr()
    assert run_cli(["models", "list", "--json", str(target)]) == 2
    lines = _lines(capsys.readouterr().err)
    assert lines == [f"error: {target}: cannot write (No space left on device); the previous file, if any, is kept"]
    assert target.read_bytes() == before and _tmp_files(tmp_path) == []


def test_torch_zip_writer_failure_is_a_user_error(tmp_path):
    from repsep.io import atomic_save

    def writer(f):
        f.write(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    with pytest.raises(UserError, match=r"model.pt: cannot write \(the write failed; is the disk full\?\)"):
        atomic_save(tmp_path / "model.pt", writer)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["data", "synth", "--out", "{long}", "--num-train", "1", "--num-val", "1", "--size", "32x64"],
    ["eval", "--model", "{long}/model.pt"],
    ["models", "list", "--json", "{long}.json"],
    ["train", "{long}.yaml"],
], ids=["synth-out", "eval-model", "json", "recipe"])
def test_over_long_path_is_one_line_naming_it(tmp_path, capsys, argv):
    long = str(tmp_path / ("a" * 300))
    code = run_cli([a.format(long=long) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = _lines(err)
    assert len(lines) == 1 and lines[0].startswith(f"error: {long}") and "too long" in lines[0], err
    assert list(tmp_path.iterdir()) == []


def test_uncaught_os_error_names_its_path(monkeypatch, capsys):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/secret")

    monkeypatch.setattr("repsep.models.model_config", denied)
    assert run_cli(["models", "list"]) == 2
    assert _lines(capsys.readouterr().err) == ["error: /data/secret: Permission denied"]


def test_multi_line_user_error_is_printed_on_one_line(monkeypatch, capsys):
    def bad(*args, **kwargs):
        raise UserError("first part\nsecond part")

    monkeypatch.setattr("repsep.models.model_config", bad)
    assert run_cli(["models", "list"]) == 2
    assert _lines(capsys.readouterr().err) == ["error: first part second part"]


def test_usage_errors_are_one_line_not_a_box(capsys):
    for argv, expected in [
        (["corrupt", "--model", "m.pt", "--num-images", "0"], "error: --num-images"),
        (["eval", "--modle", "m.pt"], "error: No such option: --modle"),
        (["eval"], "error: Missing option '--model'. (see `repsep-bench eval --help`)"),
        (["nosuchcommand"], "error: No such command 'nosuchcommand'"),
    ]:
        assert run_cli(argv) == 2
        lines = _lines(capsys.readouterr().err)
        assert len(lines) == 1 and lines[0].startswith(expected), lines
        assert not any(c in lines[0] for c in "╭╰│")


def test_help_still_works(capsys):
    assert run_cli(["eval", "--help"]) == 0
    assert "--model" in capsys.readouterr().out


def test_quiet_turns_bars_off_for_the_command_only(monkeypatch, capsys):
    import repsep.models

    seen = []
    original = repsep.models.model_config

    def spy(*args, **kwargs):
        seen.append((os.environ.get(progress.QUIET_ENV), progress.bars_enabled()))
        return original(*args, **kwargs)

    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    monkeypatch.setattr("repsep.models.model_config", spy)
    assert run_cli(["--quiet", "models", "list"]) == 0
    assert seen[0] == ("1", False)
    assert progress.QUIET_ENV not in os.environ  # restored for the next in-process call


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_error_after_a_progress_bar_is_a_line_of_its_own(monkeypatch):
    err = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", err)
    err.write("eval:  40%|####      | 2/5 [00:01<00:01]")  # a bar mid-line
    progress.print_error("x.png: truncated")
    assert err.getvalue().splitlines()[-1] == "error: x.png: truncated"


def test_bars_are_off_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress.bars_enabled() is False
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    assert progress.bars_enabled() is True
    monkeypatch.setenv(progress.QUIET_ENV, "1")
    assert progress.bars_enabled() is False


DRIVER = textwrap.dedent("""
    import os, sys, time
    import repsep.io
    def slow_fsync(fd):  # the write is under way: tell the parent, then wait to be killed
        print("writing", flush=True)
        time.sleep(60)
    repsep.io.os.fsync = slow_fsync
    from repsep.cli import main
    main(["models", "list", "--json", sys.argv[1]])
""")


def test_sigterm_mid_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out" / "models.json"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(target)], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    try:
        assert any("writing" in line for line in iter(proc.stdout.readline, ""))  # stops at the line
        assert _tmp_files(tmp_path) != []  # the temporary file exists while writing
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    assert _tmp_files(tmp_path) == [] and not target.exists()


def test_json_target_round_trip_keeps_the_payload(tmp_path):
    from repsep.json_target import write_json_target

    write_json_target(tmp_path / "a.json", {"x": [1, 2]}, "models info")
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2], "written_by": "repsep-bench models info"}
    write_json_target(tmp_path / "a.json", {"x": [3]}, "models info")
    with pytest.raises(UserError, match="was not written by repsep-bench models list"):
        write_json_target(tmp_path / "a.json", {"x": [3]}, "models list")
    with pytest.raises(TypeError):
        write_json_target(tmp_path / "b.json", [1, 2], "models list")  # type: ignore[arg-type]


def test_sigterm_during_a_real_command_removes_its_staging_folder(tmp_path):
    """`data synth` builds the dataset in a hidden sibling folder: SIGTERM midway removes it, nothing appears."""
    import time

    out = tmp_path / "sc"
    proc = subprocess.Popen([sys.executable, "-m", "repsep.cli", "data", "synth", "--out", str(out), "--num-train",
                             "400", "--num-val", "0", "--size", "64x128", "--workers", "1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while not any(p.suffix == ".png" for p in tmp_path.rglob("*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()  # still generating
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    assert list(tmp_path.iterdir()) == []


def test_sigterm_to_a_training_and_its_loader_workers_is_a_quiet_stop(synthcity_small, tmp_path):
    """SIGTERM to the whole process group (`timeout`, `kill -- -PGID`, a cluster's job stop): the DataLoader workers
    die with the training, whose loader then reports them killed while SIGTERM unwinds it; that is part of the stop
    (exit 143), not a second error with its traceback."""
    import time

    from conftest import TINY_TRAIN_OVERRIDES

    out = tmp_path / "run"
    sets = [*TINY_TRAIN_OVERRIDES, "data.num_workers=2", "schedule.iters=100000", "schedule.ckpt_interval=100000"]
    argv = [sys.executable, "-m", "repsep.cli", "train", "synthcity_tiny_baseline", "--set",
            f"data.spec=synthcity:{synthcity_small}", *(x for item in sets for x in ("--set", item)), "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "REPSEP_QUIET": "1"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            lines = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []
            if any('"loss"' in line for line in lines):  # training (its loader workers are running)
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read()
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err, err
