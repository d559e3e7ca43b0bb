"""repsep.engine.checkpoint: training state and model export files, and their bad-file errors."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from repsep.engine.checkpoint import (
    load_model,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
    weights_sha256,
)
from repsep.errors import UserError


def test_rng_state_round_trip_restores_all_generators():
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def test_state_file_loads_weights_only(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.pt"
    save_state(path, {"iter": 7, "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": [rng_state()]})
    torch.load(path, weights_only=True)  # plain types only
    back = load_state(path)
    assert back["iter"] == 7
    assert torch.equal(back["model"]["weight"], model.weight)
    assert not list(tmp_path.glob("*.tmp"))


def test_weights_sha256_sees_any_change():
    sd = {"a": torch.arange(6, dtype=torch.float32).view(2, 3), "b": torch.zeros(2, dtype=torch.bfloat16)}
    h = weights_sha256(sd)
    assert h == weights_sha256({"b": sd["b"].clone(), "a": sd["a"].clone()})  # order-independent
    changed = dict(sd, a=sd["a"].clone())
    changed["a"][1, 2] += 1
    assert weights_sha256(changed) != h
    assert weights_sha256(dict(sd, a=sd["a"].reshape(3, 2))) != h  # same bytes, other shape


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize("content, match", [
    (b"hello, not a checkpoint", "unreadable|not a torch checkpoint"),
    (pickle.dumps(Evil(), protocol=2), "refused"),
])
def test_bad_files_are_user_errors(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=match) as e:
        load_state(path)
    assert str(path) in str(e.value)


def test_truncated_and_foreign_checkpoints(tmp_path):
    good = tmp_path / "good.pt"
    save_state(good, {"iter": 1, "w": torch.randn(1000)})
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:600])
    with pytest.raises(UserError, match="cut.pt: unreadable or truncated"):
        load_state(cut)
    bare = tmp_path / "bare.pt"
    torch.save({"weight": torch.zeros(2)}, bare)
    with pytest.raises(UserError, match="bare state_dict"):
        load_state(bare)
    with pytest.raises(UserError, match="file not found"):
        load_state(tmp_path / "missing.pt")


# ---- model export ------------------------------------------------------------------------------------------------

def test_export_round_trip(tiny_run):
    loaded = load_model(tiny_run / "model_final.pt")
    assert not loaded.model.training
    assert loaded.model_config.name == "rsseg_vit" and loaded.class_table.num_classes == 19
    assert loaded.dataset_spec.startswith("synthcity:") and loaded.train_config["schedule"]["iters"] == 2
    obj = torch.load(tiny_run / "model_final.pt", weights_only=True)
    assert not any(k.startswith("region_classifier") for k in obj["state_dict"])  # deployed: no training-only head
    assert obj["weights_sha256"] == weights_sha256(loaded.model.state_dict())
    state = torch.load(tiny_run / "checkpoint_last.pt", weights_only=True)
    assert any(k.startswith("region_classifier") for k in state["model"])  # the training state keeps aux heads


def resave(src, dst, edit):
    obj = torch.load(src, weights_only=True)
    edit(obj)
    torch.save(obj, dst)
    return dst


def test_modified_or_mismatched_exports_are_refused(tiny_run, tmp_path):
    src = tiny_run / "model_final.pt"

    def tamper(o):
        k = next(iter(o["state_dict"]))
        o["state_dict"][k] = o["state_dict"][k] + 1

    with pytest.raises(UserError, match="weights do not match their recorded sha256"):
        load_model(resave(src, tmp_path / "tampered.pt", tamper))

    def fewer_classes(o):
        o["model_config"]["num_classes"] = 5

    with pytest.raises(UserError, match="model has 5 classes but its class table 'cityscapes' has 19"):
        load_model(resave(src, tmp_path / "classes.pt", fewer_classes))

    def other_model(o):
        o["model_config"]["dca"] = False
        o["model_config"]["name"] = "rsseg_vit"

    with pytest.raises(UserError, match=r"other.pt: weights do not fit model 'rsseg_vit'"):
        load_model(resave(src, tmp_path / "other.pt", other_model))
    with pytest.raises(UserError, match="not a repsep-bench model export"):
        load_model(tiny_run / "checkpoint_last.pt")
