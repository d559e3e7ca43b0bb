"""``eval`` keeps per-image results chunk by chunk: a failure in the middle keeps the chunks done, a rerun continues
from them and gives byte-identical metrics to an uninterrupted run; reused chunks are checked (digest, settings,
files); disk full is one line with the previous result untouched."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli

from repsep.engine import evaluate as evaluate_module
from repsep.engine import inference


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A 6-image SynthCity val split (32x64) and a tiny untrained 19-class export in its own run folder."""
    from repsep.data.labels import CITYSCAPES
    from repsep.data.synthcity import generate
    from repsep.engine.checkpoint import export_model
    from repsep.models import build_model, model_config

    root = tmp_path_factory.mktemp("resume")
    data = generate(root / "sc", 0, 6, size=(32, 64), seed=1, workers=1)
    torch.manual_seed(0)
    cfg = model_config("baseline_vit", size="tiny", num_classes=19, img_size=(32, 64))
    (root / "run").mkdir()
    export_model(root / "run" / "model_final.pt", build_model(cfg), cfg, CITYSCAPES, f"synthcity:{data}", {})
    return {"data": data, "model": root / "run" / "model_final.pt"}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(evaluate_module, "CHUNK_IMAGES", 2)


def _eval(setup, out: Path, *extra: str) -> int:
    return run_cli(["eval", "--model", str(setup["model"]), "--workers", "0", "--out", str(out), *extra])


def _images(setup) -> list[Path]:
    return sorted((setup["data"] / "leftImg8bit" / "val").rglob("*.png"))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _count_batches(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = inference.evaluate_batch

    def counting(model, images, label, ids, evaluator, **kw):
        seen.extend(ids)
        return real(model, images, label, ids, evaluator, **kw)

    monkeypatch.setattr(inference, "evaluate_batch", counting)
    return seen


def test_truncated_image_keeps_done_chunks_and_rerun_continues_identically(setup, tmp_path, capsys, monkeypatch):
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert _eval(setup, ref) == 0
    capsys.readouterr()
    victim = _images(setup)[3]  # position 3: chunk 1 (positions 2, 3) fails, chunk 0 is saved
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    try:
        assert _eval(setup, out) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {victim}: unreadable or truncated") and "\n" not in err
        assert not (out / "metrics.json").exists()
        marker = json.loads((out / ".repsep-bench.json").read_text())
        assert marker["kind"] == "eval" and not marker["finished"]
        assert sorted(marker["files"]) == ["partial/chunk_00000.npz", "partial/state.json"]
    finally:
        victim.write_bytes(good)
    seen = _count_batches(monkeypatch)
    assert _eval(setup, out) == 0
    printed = capsys.readouterr().out
    assert "continuing: 2 of 6 images already evaluated" in printed
    assert len(seen) == 4  # only the images not saved before
    for name in ("metrics.json", "per_image.npz", "per_class.csv", "metrics.md"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not (out / "partial").exists()
    assert json.loads((out / ".repsep-bench.json").read_text())["finished"]


def _interrupted(setup, out: Path, capsys) -> None:
    victim = _images(setup)[3]
    good = victim.read_bytes()
    victim.write_bytes(good[:100])
    try:
        assert _eval(setup, out) == 2
    finally:
        victim.write_bytes(good)
    capsys.readouterr()


def test_rerun_with_other_settings_is_refused(setup, tmp_path, capsys):
    out = tmp_path / "out"
    _interrupted(setup, out, capsys)
    before = _files(out)
    assert _eval(setup, out, "--flip") == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {out}: holds partial eval results made with other settings (inference.flip: False vs "
                   "True); rerun with the same options to continue, or pass --overwrite to start over")
    assert _files(out) == before
    # --overwrite starts over with the new settings
    assert _eval(setup, out, "--flip", "--overwrite") == 0
    assert json.loads((out / "metrics.json").read_text())["settings"]["inference"]["flip"] is True


def test_edited_chunk_is_refused(setup, tmp_path, capsys):
    out = tmp_path / "out"
    _interrupted(setup, out, capsys)
    chunk = out / "partial" / "chunk_00000.npz"
    data = bytearray(chunk.read_bytes())
    data[-30] ^= 0xFF  # one byte changed
    chunk.write_bytes(bytes(data))
    assert _eval(setup, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {chunk}: content differs from what repsep-bench eval wrote") and "\n" not in err


def test_changed_image_of_a_saved_chunk_is_refused(setup, tmp_path, capsys):
    out = tmp_path / "out"
    _interrupted(setup, out, capsys)
    first = _images(setup)[0]
    good = first.read_bytes()
    first.write_bytes(good + b"\0")  # another size: the saved chunk no longer describes this file
    try:
        assert _eval(setup, out) == 2
    finally:
        first.write_bytes(good)
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out / 'partial' / 'chunk_00000.npz'}: the images or labels it was computed "
                          "from changed since")


def test_disk_full_while_replacing_keeps_the_old_result(setup, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert _eval(setup, out) == 0
    before = _files(out)
    real = os.fsync
    calls = {"n": 0}

    def full(fd):
        calls["n"] += 1
        if calls["n"] > 2:  # let the first writes through, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", full)
    capsys.readouterr()
    assert _eval(setup, out, "--overwrite") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "No space left on device" in err and "\n" not in err
    assert err.startswith(f"error: {out}/partial/state.json: cannot write (No space left on device)"), err
    monkeypatch.setattr(os, "fsync", real)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left behind


def test_overwrite_of_an_unfinished_eval_starts_over(setup, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    _interrupted(setup, out, capsys)
    seen = _count_batches(monkeypatch)
    assert _eval(setup, out, "--overwrite") == 0
    assert len(seen) == 6


def test_continued_eval_with_predictions(setup, tmp_path, capsys):
    out, preds = tmp_path / "out", tmp_path / "pred"
    victim = _images(setup)[3]
    good = victim.read_bytes()
    victim.write_bytes(good[:100])
    try:
        assert _eval(setup, out, "--save-pred", str(preds)) == 2
    finally:
        victim.write_bytes(good)
    assert len(list(preds.glob("*.png"))) in (4, 5, 6)  # chunk 0 recorded, maybe image 2 written
    assert _eval(setup, out, "--save-pred", str(preds)) == 0
    marker = json.loads((preds / ".repsep-bench.json").read_text())
    assert marker["kind"] == "predictions" and marker["finished"] and len(marker["files"]) == 12
    assert sorted(p.name for p in preds.glob("*.png")) == sorted(marker["files"])
    shutil.rmtree(out)
    # a new eval into finished predictions needs --overwrite
    assert _eval(setup, out, "--save-pred", str(preds)) == 2
    assert f"--save-pred {preds}: already holds a finished predictions result" in capsys.readouterr().err


def test_disk_full_on_a_new_folder_leaves_nothing(setup, tmp_path, capsys, monkeypatch):
    out = tmp_path / "new" / "out"
    (tmp_path / "new").mkdir()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert _eval(setup, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out}/") and "cannot write (No space left on device)" in err, err
    assert list((tmp_path / "new").iterdir()) == []


@pytest.mark.slow
def test_two_processes_continue_a_one_process_eval_identically(setup, tmp_path, capsys, monkeypatch):
    """Chunks of 3 over 2 ranks (rank 1 gets 2 images of a chunk, rank 0 one): saved and continued the same."""
    import socket
    import subprocess
    import sys

    monkeypatch.setattr(evaluate_module, "CHUNK_IMAGES", 3)
    ref, out = tmp_path / "ref", tmp_path / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the arithmetic of the torchrun workers (OMP_NUM_THREADS=1)
    try:
        assert _eval(setup, ref) == 0
    finally:
        torch.set_num_threads(threads)
    victim = _images(setup)[4]  # chunk 0 (positions 0-2) saved, chunk 1 (3-5) fails
    good = victim.read_bytes()
    victim.write_bytes(good[:100])
    try:
        assert _eval(setup, out) == 2
    finally:
        victim.write_bytes(good)
    script = tmp_path / "run_eval.py"
    script.write_text("import sys\nfrom repsep.engine import evaluate\n"
                      "evaluate.CHUNK_IMAGES = 5  # the saved chunk size wins\n"
                      "from repsep.cli import main\nmain(sys.argv[1:])\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                           str(port), str(script), "eval", "--model", str(setup["model"]), "--workers", "0",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "continuing: 3 of 6 images already evaluated" in proc.stdout
    for name in ("metrics.json", "per_image.npz"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def test_failed_overwrite_keeps_the_old_result(setup, tmp_path, capsys):
    out = tmp_path / "out"
    assert _eval(setup, out) == 0
    before = _files(out)
    victim = _images(setup)[3]
    good = victim.read_bytes()
    victim.write_bytes(good[:100])
    try:
        assert _eval(setup, out, "--overwrite", "--flip") == 2
    finally:
        victim.write_bytes(good)
    assert f"error: {victim}: unreadable or truncated" in capsys.readouterr().err
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
