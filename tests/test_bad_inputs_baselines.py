"""Bad inputs of `models import mmseg`: one error line, exit code 2."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import run_cli


def _ckpt(tmp_path, drop: str | None = None, reshape: str | None = None):
    from mmseg_oracle import build_mmseg, require_mmseg, tiny_model_cfg

    require_mmseg()
    state = build_mmseg(tiny_model_cfg("setr_naive", 19)).state_dict()
    if drop:
        state.pop(drop)
    if reshape:
        state[reshape] = torch.zeros(3, *state[reshape].shape[1:])
    path = tmp_path / "ckpt.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    return path


@pytest.mark.parametrize(("kind", "arg", "message"), [
    ("drop", "decode_head.up_convs.0.0.bn.running_var",
     "does not fit setr_naive: missing weights for decode_head.up_convs.0.1.running_var"),
    ("reshape", "decode_head.norm.weight", "mis-shaped weights decode_head.norm.norm.weight (3,) vs (64,)"),
    ("arch", "upernet_vit", "missing keys [neck.lateral_convs.0.conv.weight]: not a upernet_vit checkpoint"),
    ("arch", "deeplab", "--arch 'deeplab': choose one of upernet_vit"),
])
def test_import_mmseg_bad_input(tmp_path, capsys, kind, arg, message):
    path = _ckpt(tmp_path, drop=arg if kind == "drop" else None, reshape=arg if kind == "reshape" else None)
    arch = arg if kind == "arch" else "setr_naive"
    code = run_cli(["models", "import", "mmseg", str(path), "--arch", arch, "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_import_mmseg_foreign_file(tmp_path, capsys):
    path = tmp_path / "x.pth"
    torch.save({"model": {"w": torch.zeros(1)}}, path)
    assert run_cli(["models", "import", "mmseg", str(path), "--arch", "setr_naive", "--out",
                    str(tmp_path / "m.pt")]) == 2
    assert "not an mmseg checkpoint" in capsys.readouterr().err
