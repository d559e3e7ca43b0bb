"""repsep.engine.train / optim: sampler keys, lr schedule, param groups, output-folder rules, exact resume."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_TRAIN_OVERRIDES
from torch import nn

from repsep.config import load_config
from repsep.engine.checkpoint import load_model, load_state, weights_sha256
from repsep.engine.optim import PolyWarmupLR, build_adamw, param_groups, poly_warmup_factor
from repsep.engine.run_folder import claim_out_dir
from repsep.engine.sampler import TrainSampler
from repsep.engine.train import train
from repsep.errors import UserError

# ---- sampler ----------------------------------------------------------------------------------------------------


def test_sampler_epochs_are_permutations_with_fixed_seeds():
    s = TrainSampler(5, seed=3, batch_size=5, start_iter=0, stop_iter=3)
    keys = list(s)
    assert len(keys) == len(s) == 15
    for e in range(3):
        assert sorted(i for i, _ in keys[5 * e:5 * e + 5]) == [0, 1, 2, 3, 4]
    assert keys[:5] != keys[5:10]  # a new permutation (and new seeds) each epoch
    assert keys == list(TrainSampler(5, seed=3, batch_size=5, start_iter=0, stop_iter=3))
    assert keys != list(TrainSampler(5, seed=4, batch_size=5, start_iter=0, stop_iter=3))


def test_sampler_resume_continues_the_stream():
    full = list(TrainSampler(7, seed=0, batch_size=2, start_iter=0, stop_iter=10, accum_steps=2))
    tail = list(TrainSampler(7, seed=0, batch_size=2, start_iter=4, stop_iter=10, accum_steps=2))
    assert tail == full[4 * 2 * 2:]


def test_sampler_shards_ranks_without_overlap():
    one = list(TrainSampler(9, seed=1, batch_size=2, start_iter=0, stop_iter=6))
    ranks = [list(TrainSampler(9, seed=1, batch_size=1, start_iter=0, stop_iter=6, rank=r, world=2))
             for r in range(2)]
    # the two ranks together consume exactly the single-process stream: iteration i = rank 0's key, rank 1's key
    interleaved = [k for pair in zip(*ranks, strict=True) for k in pair]
    assert interleaved == one


# ---- schedule and param groups ------------------------------------------------------------------------------------


def test_poly_warmup_factor_known_values():
    assert poly_warmup_factor(0, 100) == 1.0
    assert poly_warmup_factor(50, 100) == pytest.approx(0.5)
    assert poly_warmup_factor(50, 100, power=2.0) == pytest.approx(0.25)
    assert poly_warmup_factor(100, 100) == 0.0
    # warm-up: iteration 0 at warmup_ratio x poly, halfway at ~half
    assert poly_warmup_factor(0, 100, warmup_iters=10, warmup_ratio=0.1) == pytest.approx(0.1)
    assert poly_warmup_factor(5, 100, warmup_iters=10, warmup_ratio=0.0) == pytest.approx(0.95 * 0.5)
    assert poly_warmup_factor(10, 100, warmup_iters=10) == pytest.approx(0.9)


class Layered(nn.Module):
    """Stand-in with the Segmentor's layer-decay API: embed (0), two blocks (1, 2), head (3)."""

    num_layers = 2

    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 3))
        self.embed = nn.Linear(3, 3)
        self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3)])
        self.norm = nn.LayerNorm(3)
        self.head = nn.Linear(3, 2)

    def layer_id(self, name: str) -> int:
        if name.startswith(("pos_embed", "embed")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return 3

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}


def test_param_groups_layer_decay_head_mult_and_no_decay():
    groups = param_groups(Layered(), lr=1.0, weight_decay=0.05, layer_decay=0.5, head_lr_mult=10.0)
    by_name = {n: g for g in groups for n in g["names"]}
    assert by_name["embed.weight"]["lr"] == pytest.approx(0.125)  # 0.5 ** 3
    assert by_name["blocks.0.weight"]["lr"] == pytest.approx(0.25)
    assert by_name["blocks.1.weight"]["lr"] == pytest.approx(0.5)
    assert by_name["head.weight"]["lr"] == pytest.approx(10.0)
    assert by_name["embed.weight"]["weight_decay"] == 0.05
    for name in ("pos_embed", "embed.bias", "norm.weight", "norm.bias", "head.bias"):
        assert by_name[name]["weight_decay"] == 0.0, name
    assert sum(len(g["params"]) for g in groups) == len(list(Layered().parameters()))


def test_scheduler_sets_group_lrs_and_round_trips_state():
    model = Layered()
    opt = build_adamw(model, lr=1.0, weight_decay=0.0, layer_decay=0.5, head_lr_mult=2.0)
    sched = PolyWarmupLR(opt, iters=10, warmup_iters=2, warmup_ratio=0.5)
    lrs0 = sorted(g["lr"] for g in opt.param_groups)
    assert lrs0 == pytest.approx(sorted(0.5 * g["lr_scale"] for g in opt.param_groups))
    for _ in range(4):
        opt.step()
        sched.step()
    head = max(opt.param_groups, key=lambda g: g["lr_scale"])
    assert head["lr"] == pytest.approx(2.0 * 0.6)  # factor (1 - 4/10) after warm-up
    fresh = PolyWarmupLR(build_adamw(model, lr=1.0, weight_decay=0.0), iters=10, warmup_iters=2, warmup_ratio=0.5)
    fresh.load_state_dict(sched.state_dict())
    assert fresh.last_epoch == 4


# ---- output folder ----------------------------------------------------------------------------------------------


def test_out_dir_rules(tmp_path):
    from repsep.ownership import OwnedFolder

    assert claim_out_dir(tmp_path / "new", resume=False, overwrite=False)[0] == "fresh"
    assert claim_out_dir(tmp_path, resume=False, overwrite=False)[0] == "fresh"  # empty folder
    assert not (tmp_path / ".repsep-bench.json").exists()  # no side effects
    run = OwnedFolder.claim(tmp_path, "train")
    run.write_text("metrics.jsonl", "{}\n")
    with pytest.raises(UserError, match="unfinished train run"):
        claim_out_dir(tmp_path, resume=False, overwrite=False)
    assert claim_out_dir(tmp_path, resume=True, overwrite=False)[0] == "fresh"  # nothing to resume from
    assert claim_out_dir(tmp_path, resume=False, overwrite=True)[0] == "replace"
    run.write_bytes("checkpoint_last.pt", b"x")
    assert claim_out_dir(tmp_path, resume=True, overwrite=False)[0] == "resume"
    run.finish()
    with pytest.raises(UserError, match="finished train result"):
        claim_out_dir(tmp_path, resume=False, overwrite=False)
    assert claim_out_dir(tmp_path, resume=True, overwrite=False)[0] == "done"
    assert claim_out_dir(tmp_path, resume=False, overwrite=True)[0] == "replace"
    with pytest.raises(UserError, match="exclude"):
        claim_out_dir(tmp_path, resume=True, overwrite=True)
    (tmp_path / "notes.txt").write_text("mine")  # a file train did not write: refused whatever the flags
    for resume, overwrite in ((False, False), (True, False), (False, True)):
        with pytest.raises(UserError, match="notes.txt, which repsep-bench train did not write"):
            claim_out_dir(tmp_path, resume=resume, overwrite=overwrite)


# ---- end-to-end on a tiny SynthCity ---------------------------------------------------------------------------

def tiny_config(root, *extra: str):
    return load_config("synthcity_tiny_rsseg", [f"data.spec=synthcity:{root}", *TINY_TRAIN_OVERRIDES,
                                                "schedule.iters=3", "optim.warmup_iters=2", *extra])


def test_resume_is_bit_identical_to_an_uninterrupted_run(synthcity_small, tmp_path):
    cfg = tiny_config(synthcity_small)
    assert train(cfg, tmp_path / "full", progress=False)["status"] == "finished"
    assert train(cfg, tmp_path / "part", stop_at=1, progress=False) == {"status": "stopped", "iter": 1, "val": None}
    assert not (tmp_path / "part" / "DONE").exists()
    assert load_state(tmp_path / "part" / "checkpoint_last.pt")["iter"] == 1
    with pytest.raises(UserError, match="unfinished train run"):
        train(cfg, tmp_path / "part", progress=False)
    # resume with data workers (the data order does not depend on them)
    resumed = train(tiny_config(synthcity_small, "data.num_workers=2"), tmp_path / "part", resume=True,
                    progress=False)
    assert resumed["status"] == "finished"
    full, part = (load_state(tmp_path / d / "checkpoint_last.pt") for d in ("full", "part"))
    assert full["iter"] == part["iter"] == 3
    assert full["model"].keys() == part["model"].keys()
    for k in full["model"]:
        assert torch.equal(full["model"][k], part["model"][k]), k
    for a, b in zip(full["optimizer"]["state"].values(), part["optimizer"]["state"].values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert full["scheduler"] == part["scheduler"]
    assert (tmp_path / "full" / "metrics.jsonl").read_text() == (tmp_path / "part" / "metrics.jsonl").read_text()
    final = load_model(tmp_path / "part" / "model_final.pt")
    assert weights_sha256(final.model.state_dict()) == weights_sha256(
        load_model(tmp_path / "full" / "model_final.pt").model.state_dict())
    # a finished folder: --resume is a no-op, a plain run is refused and leaves the files alone
    before = (tmp_path / "full" / "model_final.pt").read_bytes()
    assert train(cfg, tmp_path / "full", resume=True, progress=False)["status"] == "done"
    with pytest.raises(UserError, match="finished train result"):
        train(cfg, tmp_path / "full", progress=False)
    assert (tmp_path / "full" / "model_final.pt").read_bytes() == before


def test_resume_refuses_a_different_config(synthcity_small, tmp_path):
    train(tiny_config(synthcity_small), tmp_path, stop_at=1, progress=False)
    with pytest.raises(UserError, match=r"different config \(optim.lr"):
        train(tiny_config(synthcity_small, "optim.lr=0.5"), tmp_path, resume=True, progress=False)


def run_cli(*args: str) -> int:
    from repsep.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(args))
    return e.value.code


def test_train_bad_inputs_exit_2_and_write_nothing(tiny_run, tmp_path, capsys):
    typo = tmp_path / "typo.yaml"
    typo.write_text("model: {name: rsseg_vit}\noptim: {lrr: 0.1}\n")
    before = {p.name: p.read_bytes() for p in tiny_run.iterdir() if p.is_file()}
    cases = [
        ([str(typo)], f"{typo}: unknown key 'optim.lrr'"),
        (["synthcity_tiny_rsseg", "--set", f"data.spec=cityscapes:{tmp_path / 'nothing'}"], "nothing"),
        (["synthcity_tiny_rsseg", "--set", "optim.lr=fast"], "--set optim.lr=fast: optim.lr: expected float"),
        (["synthcity_tiny_rsseg", "--resume", "--overwrite"], "exclude each other"),
    ]
    for args, match in cases:
        assert run_cli("train", *args, "--out", str(tmp_path / "run")) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and match in err and "\n" not in err, err
        assert not (tmp_path / "run").exists()
    assert run_cli("train", "synthcity_tiny_rsseg", "--out", str(tiny_run)) == 2
    assert "already holds a finished train result" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tiny_run.iterdir() if p.is_file()} == before


def test_a_second_train_on_a_run_folder_in_use_is_refused(synthcity_small, tmp_path):
    from repsep.ownership import lock_folder

    train(tiny_config(synthcity_small), tmp_path, stop_at=1, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with lock_folder(tmp_path, "held by this test"):  # as a running `train --resume` on the folder holds it
        with pytest.raises(UserError, match="another train is writing in this run folder; wait for it"):
            train(tiny_config(synthcity_small), tmp_path, resume=True, progress=False)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert train(tiny_config(synthcity_small), tmp_path, resume=True, progress=False)["status"] == "finished"
