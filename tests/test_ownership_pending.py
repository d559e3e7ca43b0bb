"""repsep.ownership: a file renamed into place but not yet recorded (process killed) stays owned."""

from __future__ import annotations

import json

import pytest

from repsep.errors import UserError
from repsep.manifest import sha256_bytes
from repsep.ownership import MARKER, OwnedFolder


class Killed(BaseException):
    pass


@pytest.mark.parametrize("method", ["save", "write_bytes"])
def test_kill_between_rename_and_record_keeps_the_file_owned(tmp_path, monkeypatch, method):
    folder = OwnedFolder.claim(tmp_path / "run", "train")
    folder.write_bytes("a.txt", b"old")

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(OwnedFolder, "record", killed)
    with pytest.raises(Killed):
        if method == "save":
            folder.save("ckpt.pt", lambda f: f.write(b"new checkpoint"))
        else:
            folder.write_bytes("ckpt.pt", b"new checkpoint")
    monkeypatch.undo()
    marker = json.loads((tmp_path / "run" / MARKER).read_text())
    assert "ckpt.pt" not in marker["files"] and marker["pending"] == {"ckpt.pt": sha256_bytes(b"new checkpoint")}
    again = OwnedFolder.claim(tmp_path / "run", "train", create=False)  # before: "holds ckpt.pt ... did not write"
    assert again.has("ckpt.pt") and again.read_bytes("ckpt.pt") == b"new checkpoint"


def test_a_pending_file_with_other_content_is_foreign(tmp_path, monkeypatch):
    folder = OwnedFolder.claim(tmp_path / "run", "train")
    monkeypatch.setattr(OwnedFolder, "record", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        folder.write_bytes("ckpt.pt", b"new")
    monkeypatch.undo()
    (tmp_path / "run" / "ckpt.pt").write_bytes(b"edited")
    with pytest.raises(UserError, match="holds ckpt.pt, which repsep-bench train did not write"):
        OwnedFolder.claim(tmp_path / "run", "train", create=False)


def test_temporaries_left_by_a_killed_atomic_write_are_not_foreign(tmp_path):
    folder = OwnedFolder.claim(tmp_path / "run", "train")
    folder.write_bytes("ckpt.pt", b"x")
    (tmp_path / "run" / "..repsep-bench.json.teewnc7i.tmp").write_text("{")  # the marker's own temporary
    (tmp_path / "run" / ".ckpt.pt.a1b2c3d4.tmp").write_bytes(b"partial")  # a recorded file's temporary
    OwnedFolder.claim(tmp_path / "run", "train", create=False)
    (tmp_path / "run" / ".notes.txt.a1b2c3d4.tmp").write_bytes(b"someone else's")
    with pytest.raises(UserError, match=r"holds \.notes\.txt\.a1b2c3d4\.tmp"):
        OwnedFolder.claim(tmp_path / "run", "train", create=False)
