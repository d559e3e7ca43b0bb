"""`train` bad inputs and faults (issues 18 and 22): one error line, exit 2, nothing the user owns lost."""

from __future__ import annotations

import errno
import shutil

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from conftest import TINY_TRAIN_OVERRIDES
from PIL import Image

from repsep.config import load_config
from repsep.engine import train as train_module
from repsep.engine.checkpoint import load_state
from repsep.engine.train import train
from repsep.errors import UserError
from repsep.ownership import MARKER


def tiny_cfg(root, *extra: str):
    return load_config("synthcity_tiny_rsseg", [f"data.spec=synthcity:{root}", *TINY_TRAIN_OVERRIDES, *extra])


def cli_sets(root, *extra: str) -> list[str]:
    return [a for item in (f"data.spec=synthcity:{root}", *TINY_TRAIN_OVERRIDES, *extra) for a in ("--set", item)]


def files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bad_val_data(synthcity_small, tmp_path_factory):
    """synthcity_small with one val label holding the value 77 (no Cityscapes label id)."""
    from repsep.data import open_dataset

    root = tmp_path_factory.mktemp("bad_val") / "data"
    shutil.copytree(synthcity_small, root)
    label = open_dataset(f"synthcity:{root}", "val").labels[3]
    raw = np.array(Image.open(label))
    raw[5, 7] = 77
    Image.fromarray(raw).save(label)
    return root, label


LONGER = ("schedule.iters=3",)
"""the stopped run's schedule: resuming it to --stop-at 2 neither validates nor exports"""


@pytest.fixture(scope="module")
def stopped_run(synthcity_small, tmp_path_factory):
    """A 3-iteration run folder stopped after iteration 1 (checkpoint_last.pt, no model)."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    assert train(tiny_cfg(synthcity_small, *LONGER), out, stop_at=1, progress=False)["status"] == "stopped"
    return out


def test_bad_val_label_is_found_before_training(bad_val_data, tmp_path, capsys, monkeypatch):
    root, label = bad_val_data
    steps = []
    monkeypatch.setattr(train_module, "_run", lambda *a, **k: steps.append(1))
    assert run_cli(["train", "synthcity_tiny_rsseg", *cli_sets(root), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {label}") and "77" in err and "\n" not in err, err
    assert steps == [] and not (tmp_path / "run").exists()  # before iteration 1, nothing written


def test_failed_overwrite_keeps_the_old_model(tiny_run, bad_val_data, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    before = files(out)
    root, label = bad_val_data
    assert run_cli(["train", "synthcity_tiny_rsseg", *cli_sets(root), "--out", str(out), "--overwrite"]) == 2
    assert str(label) in capsys.readouterr().err
    assert files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left


def test_overwrite_swaps_in_only_after_success(tiny_run, synthcity_small, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    (out / "eval").mkdir()  # a nested result of its own is left alone
    (out / "eval" / MARKER).write_text('{"kind": "eval", "finished": true, "files": {}}')
    old_model = (out / "model_final.pt").read_bytes()

    def crash(*args, **kwargs):
        assert (out / "model_final.pt").read_bytes() == old_model  # the old run is untouched while training
        raise UserError("injected failure")

    with monkeypatch.context() as m:
        m.setattr(train_module, "_run", crash)
        with pytest.raises(UserError, match="injected"):
            train(tiny_cfg(synthcity_small), out, overwrite=True, progress=False)
    assert (out / "model_final.pt").read_bytes() == old_model
    assert train(tiny_cfg(synthcity_small), out, overwrite=True, stop_at=1, progress=False)["status"] == "stopped"
    assert not (out / "model_final.pt").exists() and not (out / "DONE").exists()
    assert load_state(out / "checkpoint_last.pt")["iter"] == 1
    assert (out / "eval" / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with pytest.raises(UserError, match="unfinished train run"):  # the marker says unfinished, not finished
        train(tiny_cfg(synthcity_small), out, progress=False)


def test_foreign_file_in_out_is_an_error_naming_it(stopped_run, synthcity_small, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    (out / "thesis.tex").write_text("mine")
    before = files(out)
    for flag in ([], ["--resume"], ["--overwrite"]):
        assert run_cli(["train", "synthcity_tiny_rsseg", *cli_sets(synthcity_small), "--out", str(out), *flag]) == 2
        err = capsys.readouterr().err.strip()
        assert "thesis.tex, which repsep-bench train did not write" in err and "\n" not in err, (flag, err)
    assert files(out) == before


def test_nan_loss_never_writes_a_checkpoint(synthcity_small, tmp_path, monkeypatch):
    """--stop-at before the next log line: the divergence used to be saved as checkpoint_last.pt."""
    from repsep.models.segmentor import Segmentor

    real = Segmentor.losses

    def nan_losses(self, outputs, target):
        out = real(self, outputs, target)
        out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(Segmentor, "losses", nan_losses)
    out = tmp_path / "run"
    with pytest.raises(UserError, match="diverged at or before iteration 1.*no checkpoint written"):
        train(tiny_cfg(synthcity_small, "schedule.log_interval=10"), out, stop_at=1, progress=False)
    assert not (out / "checkpoint_last.pt").exists()


@pytest.mark.parametrize("failure", [
    RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4736 vs 4626"),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_disk_full_while_saving_is_one_line_and_keeps_the_checkpoint(stopped_run, synthcity_small, tmp_path,
                                                                     monkeypatch, capsys, failure):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    before = (out / "checkpoint_last.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if hasattr(f, "write"):
            f.write(b"partial")
            raise failure
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    code = run_cli(["train", "synthcity_tiny_rsseg", *cli_sets(synthcity_small, *LONGER), "--out", str(out),
                    "--resume", "--stop-at", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: {out / 'checkpoint_last.pt'}: cannot write") and "\n" not in err
    assert (out / "checkpoint_last.pt").read_bytes() == before
    assert not list(out.glob(".*.tmp"))


def test_edited_checkpoint_is_refused_on_resume(stopped_run, synthcity_small, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    state = torch.load(out / "checkpoint_last.pt", weights_only=True)
    state["iter"] = 2  # a plausible edit: every field still valid
    torch.save(state, out / "checkpoint_last.pt")
    assert run_cli(["train", "synthcity_tiny_rsseg", *cli_sets(synthcity_small, *LONGER), "--out", str(out),
                    "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out / 'checkpoint_last.pt'}: content differs") and "\n" not in err


def test_resume_with_another_world_size_is_refused(stopped_run, synthcity_small, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    monkeypatch.setattr(train_module.dist, "world_size", lambda: 2)
    with pytest.raises(UserError, match=r"started with 1 process\(es\) and is resumed with 2.*nproc-per-node 1"):
        train(tiny_cfg(synthcity_small, *LONGER), out, resume=True, progress=False)


def test_summary_line_says_what_runs(synthcity_small, tmp_path, capsys):
    assert run_cli(["train", "synthcity_tiny_rsseg", *cli_sets(synthcity_small), "--out", str(tmp_path / "run"),
                    "--stop-at", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("train: device cpu, rsseg_vit (2 iterations), 12 train / 8 val images (synthcity:")
    assert "batch 2 (2 x 1 accum x 1), weights: none (random init)" in first


def test_scan_headers_skips_the_label_scan(bad_val_data, tmp_path, monkeypatch):
    root, _ = bad_val_data
    monkeypatch.setattr(train_module, "_run", lambda *a, **k: {"status": "stopped", "iter": 0, "val": None})
    train(tiny_cfg(root, "data.scan=headers"), tmp_path / "run", progress=False)  # no label decode: passes
    with pytest.raises(UserError, match="data.scan"):
        tiny_cfg(root, "data.scan=some")
