"""Bad input under multi-node torchrun (two nodes on 127.0.0.1, gloo): one error line on every node, no hang, and
nothing left behind. Each node runs in its own working folder, so relative paths name each node's own files, as on
two machines without a shared filesystem."""

from __future__ import annotations

import shutil

import pytest
from multinode_helpers import Nodes, make_inputs

pytestmark = pytest.mark.slow
ARGS = ["--corruptions", "contrast", "--severities", "1", "--workers", "0"]


@pytest.fixture(scope="module")
def cwds(tmp_path_factory):
    """Two working folders, each with a model.pt: node 1's is a copy of node 0's."""
    tmp = tmp_path_factory.mktemp("nodes")
    a, b = tmp / "node0", tmp / "node1"
    a.mkdir(), b.mkdir()
    make_inputs(a)
    shutil.copy(a / "model.pt", b / "model.pt")
    return a, b


def _both_fail_with(run: Nodes, message: str) -> None:
    codes = run.wait()
    assert codes[0] != 0 and codes[1] != 0
    for rank in (0, 1):
        lines = [ln for ln in run.log(rank).splitlines() if ln.startswith("error: ")]
        assert lines and message in lines[0], run.log(rank)[-2000:]


def test_out_not_shared_between_nodes(cwds, tmp_path):
    a, b = cwds
    run = Nodes(["corrupt", "--model", str(a / "model.pt"), *ARGS, "--out", "out"], tmp_path, cwds=(a, b))
    _both_fail_with(run, "--out out: rank 1 (host ")
    assert "cannot see the files rank 0 (host " in run.log(0) and "on a filesystem every node shares" in run.log(0)
    assert not (a / "out").exists() and not (b / "out").exists()  # nothing left behind


def test_model_missing_on_one_node(cwds, tmp_path):
    a, b = cwds
    (b / "model.pt").rename(b / "moved.pt")
    try:
        run = Nodes(["corrupt", "--model", "model.pt", *ARGS, "--out", str(tmp_path / "out")], tmp_path / "logs",
                    cwds=(a, b))
        _both_fail_with(run, "rank 1 (host ")
        assert "model.pt" in run.log(0)
    finally:
        (b / "moved.pt").rename(b / "model.pt")
    assert not (tmp_path / "out").exists()


def test_other_model_on_one_node(cwds, tmp_path):
    a, b = cwds
    make_inputs(b, seed=1, data=a / "data")  # node 1 holds another model under the same path
    run = Nodes(["corrupt", "--model", "model.pt", *ARGS, "--out", str(tmp_path / "out")], tmp_path / "logs",
                cwds=(a, b))
    _both_fail_with(run, "reads other inputs than rank 0 (host ")
    assert "(model_sha256: " in run.log(0) and "every node must see the same model" in run.log(0)
    assert not (tmp_path / "out").exists()
