"""The ownership rule (repsep.ownership): only files a command recorded are ever replaced or deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from repsep.errors import UserError
from repsep.ownership import MARKER, OwnedFolder, refuse_protected, replace_result


def test_claim_refuses_foreign_file_and_names_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("my thesis")
    with pytest.raises(UserError, match="thesis.tex"):
        OwnedFolder.claim(out, "report", overwrite=True)
    assert (out / "thesis.tex").read_text() == "my thesis"
    assert not (out / MARKER).exists()


def test_finished_result_needs_overwrite_and_other_kind_is_refused(tmp_path):
    owned = OwnedFolder.claim(tmp_path / "r", "eval")
    owned.write_json("metrics.json", {"mIoU": 1.0})
    owned.finish()
    with pytest.raises(UserError, match="already holds a finished eval result"):
        OwnedFolder.claim(tmp_path / "r", "eval")
    with pytest.raises(UserError, match="holds a repsep-bench eval result, not corrupt"):
        OwnedFolder.claim(tmp_path / "r", "corrupt", overwrite=True)
    assert OwnedFolder.claim(tmp_path / "r", "eval", overwrite=True).files.keys() == {"metrics.json"}


def test_nested_result_with_own_marker_is_neither_foreign_nor_replaced(tmp_path):
    run = OwnedFolder.claim(tmp_path / "run", "train")
    run.write_text("config.yaml", "a: 1\n")
    run.finish()
    nested = OwnedFolder.claim(tmp_path / "run" / "eval", "eval")
    nested.write_json("metrics.json", {})
    with replace_result(tmp_path / "run", "train", overwrite=True) as staging:
        staging.write_text("config.yaml", "a: 2\n")
    assert (tmp_path / "run" / "config.yaml").read_text() == "a: 2\n"
    assert (tmp_path / "run" / "eval" / "metrics.json").is_file()


def test_replace_result_keeps_old_result_when_the_new_one_fails(tmp_path):
    out = tmp_path / "report"
    with replace_result(out, "report") as staging:
        staging.write_text("README.md", "old\n")
    with pytest.raises(RuntimeError), replace_result(out, "report", overwrite=True) as staging:
        staging.write_text("README.md", "new\n")
        raise RuntimeError("training diverged")
    assert (out / "README.md").read_text() == "old\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["report"]  # no staging folder left behind
    with replace_result(out, "report", overwrite=True) as staging:
        staging.write_text("other.md", "new\n")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "other.md"]  # the old README (recorded) was replaced


def test_edited_file_is_detected_on_read(tmp_path):
    owned = OwnedFolder.claim(tmp_path / "c", "corrupt")
    owned.write_json("cells/fog_1.json", {"mIoU": 50.0})
    assert owned.read_json("cells/fog_1.json") == {"mIoU": 50.0}
    (tmp_path / "c" / "cells" / "fog_1.json").write_text('{"mIoU": 99.0}\n')
    reread = OwnedFolder.claim(tmp_path / "c", "corrupt", resume=True)
    with pytest.raises(UserError, match=r"fog_1.json: content differs"):
        reread.read_json("cells/fog_1.json")


def test_unrecorded_file_is_never_replaced_or_deleted(tmp_path):
    owned = OwnedFolder.claim(tmp_path / "p", "predictions")
    (tmp_path / "p" / "a.png").write_bytes(b"user")
    with pytest.raises(UserError, match="a.png: exists and was not written"):
        owned.write_bytes("a.png", b"ours")
    with pytest.raises(UserError, match="refusing to delete"):
        owned.remove("a.png")
    owned.remove_all()
    assert (tmp_path / "p" / "a.png").read_bytes() == b"user"


def test_protected_folders(tmp_path, synthcity_small):
    with pytest.raises(UserError, match="file system root"):
        refuse_protected(Path("/"))
    with pytest.raises(UserError, match="home folder"):
        refuse_protected(Path.home())
    with pytest.raises(UserError, match="dataset root"):
        refuse_protected(Path(synthcity_small))
    with pytest.raises(UserError, match="is an input of this command"):
        refuse_protected(tmp_path / "runs", inputs=[tmp_path / "runs"])
    model = tmp_path / "runs" / "a" / "model_final.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"x")
    with pytest.raises(UserError, match="is an input of this command"):
        refuse_protected(tmp_path / "runs" / "a", inputs=[model])
    refuse_protected(tmp_path / "elsewhere", inputs=[model])
