"""`corrupt` under multi-node torchrun: two nodes on 127.0.0.1 (gloo, one process each) give the bytes one process
gives, and a sweep whose node 1 was killed resumes from the cells already finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli
from multinode_helpers import Nodes, make_inputs, outputs

from repsep.engine import nodes
from repsep.errors import UserError

# slide windows at two scales: a cell takes long enough on each rank for the test to kill node 1 between cells
ARGS = ["--corruptions", "gaussian_noise,contrast", "--severities", "3", "--backend", "torch", "--workers", "0",
        "--mode", "slide", "--crop", "32x32", "--stride", "16x16", "--scales", "1.0,2.0"]
CELLS = 3  # clean + 2 corruptions x 1 severity


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The inputs, and the outputs of one process (the reference the two-node runs must equal)."""
    tmp = tmp_path_factory.mktemp("multinode")
    argv = ["corrupt", "--model", str(make_inputs(tmp)), *ARGS]
    assert run_cli([*argv, "--out", str(tmp / "single")]) == 0
    return tmp, argv


def test_single_process_helpers_are_no_ops(tmp_path):
    assert nodes.launch() == {"world_size": 1, "nodes": 1}
    nodes.check_same_inputs({"model_sha256": "a"}, "model")
    nodes.check_shared_folder(None, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="^bad$"), nodes.together():
        raise UserError("bad")  # a single process raises its own error unchanged


def test_first_problem_names_the_rank_and_host():
    assert nodes._first([(None, "a"), (None, "b")]) is None
    assert nodes._first([(None, "a"), ("--model m: missing", "b")]) == "rank 1 (host b): --model m: missing"
    assert nodes._first([("bad", "a"), ("worse", "b")]) == "bad"  # rank 0's own error keeps its wording


@pytest.mark.slow
def test_two_nodes_equal_one_process(setup):
    tmp, argv = setup
    run = Nodes([*argv, "--out", str(tmp / "two")], tmp / "logs_two")
    assert run.wait() == [0, 0], run.log(0)[-2000:] + run.log(1)[-2000:]
    assert outputs(tmp / "two") == outputs(tmp / "single")
    one, two = (json.loads((tmp / d / "manifest.json").read_text()) for d in ("single", "two"))
    assert one.pop("launch") == {"world_size": 1, "nodes": 1} and two.pop("launch") == {"world_size": 2, "nodes": 2}
    one.pop("command"), two.pop("command")  # this test's own command line vs torchrun's
    assert one == two  # nothing else differs
    assert not [p for p in (tmp / "two").rglob("*") if p.name.startswith(nodes.PROBE_PREFIX)]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the torchrun workers")
def test_killed_node_resumes_from_finished_cells(setup):
    tmp, argv = setup
    out = tmp / "killed"
    finished = lambda: sorted((out / "cells").glob("*.pt")) if (out / "cells").is_dir() else []  # noqa: E731
    run = Nodes([*argv, "--out", str(out)], tmp / "logs_kill")
    run.wait_for(lambda: bool(finished()))  # the first cell (clean) is saved
    run.kill(1)
    assert run.wait()[0] != 0  # rank 0 stops: its peer is gone
    done = finished()
    assert 1 <= len(done) < CELLS and not (out / "robustness.json").exists(), run.log(0)[-2000:]
    for p in done:
        assert "key" in torch.load(p, weights_only=True)  # complete, loadable
    mtimes = {p: p.stat().st_mtime_ns for p in done}
    again = Nodes([*argv, "--out", str(out)], tmp / "logs_again")
    assert again.wait() == [0, 0], again.log(0)[-2000:] + again.log(1)[-2000:]
    assert f"{CELLS} cells ({len(done)} reused)" in again.log(0)
    assert {p: p.stat().st_mtime_ns for p in done} == mtimes  # reused, not rewritten
    assert outputs(out) == outputs(tmp / "single")
