"""Bad --precision values (issue 21 item 2): one stderr line naming the option, exit 2, before any work."""

from __future__ import annotations

import pytest
from cli_helpers import run_cli
from corruption_fixtures import make_tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("bad_precision"))


@pytest.mark.parametrize("command", [
    ["eval", "--workers", "0"],
    ["corrupt", "--corruptions", "contrast", "--severities", "1", "--workers", "0"],
    ["analyze", "--num-images", "1", "--device", "cpu"],
])
@pytest.mark.parametrize("value", ["fp64", "FP32"])
def test_bad_precision_is_one_line(model, tmp_path, capsys, command, value):
    out = tmp_path / "out"
    code = run_cli([command[0], "--model", str(model), *command[1:], "--precision", value, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: --precision {value}: choose one of fp32, bf16, fp16"], err
    assert not out.exists()
