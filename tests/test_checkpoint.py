"""repsep.engine.checkpoint: training state and model export files, and their bad-file errors."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from repsep.engine.checkpoint import (
    check_train_state,
    export_model,
    load_model,
    load_state,
    metadata_sha256,
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


def resave(src, dst, edit, redigest=True):
    """Copy an export with ``edit`` applied; ``redigest`` recomputes its metadata digest (to reach the field
    checks behind it), as someone who knows the format could."""
    obj = torch.load(src, weights_only=True)
    edit(obj)
    if redigest:
        obj["metadata_sha256"] = metadata_sha256(obj)
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


def test_edited_non_weight_fields_are_refused(tiny_run, tmp_path):
    """The sha256 used to cover the weights only: an edited dataset_spec or class name loaded silently."""
    src = tiny_run / "model_final.pt"

    def other_spec(o):
        o["dataset_spec"] = "cityscapes:/elsewhere"

    with pytest.raises(UserError, match=r"spec.pt: the non-weight fields .* do not match their recorded sha256") as e:
        load_model(resave(src, tmp_path / "spec.pt", other_spec, redigest=False))
    assert "\n" not in str(e.value)

    def rename_class(o):
        o["class_table"]["classes"][0] = "lawn"

    with pytest.raises(UserError, match="do not match their recorded sha256"):
        load_model(resave(src, tmp_path / "names.pt", rename_class, redigest=False))


@pytest.mark.parametrize("edit, match", [
    (lambda o: o.pop("metadata_sha256"), "field 'metadata_sha256' is missing"),
    (lambda o: o.pop("dataset_spec"), "field 'dataset_spec' is missing"),
    (lambda o: o.update(dataset_spec=3), "field 'dataset_spec' must be a non-empty string"),
    (lambda o: o.update(model_config=[1, 2]), "field 'model_config' must be a mapping"),
    (lambda o: o["class_table"].update(palette=[[0, 0, 0]]), "field 'class_table.palette' must be 19 RGB triples"),
    (lambda o: o["class_table"].update(ignore_index=-1), "field 'class_table.ignore_index' must be an integer"),
    (lambda o: o.update(model_name="baseline_vit"), "field 'model_name' 'baseline_vit' differs from model_config"),
    (lambda o: o["train_config"]["optim"].update(lr="fast"), r"\[train_config\].*optim.lr"),
    (lambda o: (o["model_config"].update(num_classes=5), o["class_table"].update(
        classes=o["class_table"]["classes"][:5], palette=o["class_table"]["palette"][:5])),
     "class_table' has 5 classes but the head .* predicts 19"),
])
def test_export_fields_are_validated_one_line(tiny_run, tmp_path, edit, match):
    path = resave(tiny_run / "model_final.pt", tmp_path / "edited.pt", edit)
    if "metadata_sha256" in match:
        obj = torch.load(path, weights_only=True)
        obj.pop("metadata_sha256", None)
        torch.save(obj, path)
    with pytest.raises(UserError, match=match) as e:
        load_model(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_refused_pickle_is_one_line_without_torch_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "repsep-bench/model-v2", "state_dict": Evil()}, path)
    for load in (load_model, load_state):
        with pytest.raises(UserError, match="refused") as e:
            load(path)
        assert "\n" not in str(e.value) and "weights_only" not in str(e.value), str(e.value)


def test_pretrained_refused_pickle_is_one_line(tmp_path):
    from repsep.models import build_model, load_pretrained, model_config

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Evil()}, path)
    model = build_model(model_config("baseline_vit", num_classes=5))
    with pytest.raises(UserError, match="refused") as e:
        load_pretrained(model.backbone, str(path))
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value), str(e.value)


def test_non_finite_weights_are_never_exported(tmp_path):
    from repsep.data.labels import CITYSCAPES
    from repsep.models import build_model, model_config

    cfg = model_config("baseline_vit", num_classes=19)
    model = build_model(cfg)
    with torch.no_grad():
        next(model.head.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(UserError, match="not written, weight head.* is not finite"):
        export_model(tmp_path / "m.pt", model, cfg, CITYSCAPES, "synthcity:x", {})
    with pytest.raises(UserError, match="is not finite"):
        save_state(tmp_path / "s.pt", {"iter": 1, "model": model.state_dict()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.pop("data"), "field 'data' is missing"),
    (lambda s: s.update(iter="3"), "field 'iter' must be an integer >= 1"),
    (lambda s: s.update(iter=10**6), "field 'iter' is 1000000, beyond config schedule.iters 2"),
    (lambda s: s["data"].update(world_size=0), "field 'data.world_size' must be an integer >= 1"),
    (lambda s: s.update(rng=[]), "field 'rng' must be a non-empty list"),
    (lambda s: s["config"]["optim"].update(lr="fast"), r"\[config\].*optim.lr"),
    (lambda s: s.update(optimizer={"state": 1}), "field 'optimizer' must be an optimizer state_dict"),
])
def test_training_state_fields_are_validated(tiny_run, edit, match):
    state = load_state(tiny_run / "checkpoint_last.pt")
    check_train_state(state, "ckpt.pt")  # the real one passes
    edit(state)
    with pytest.raises(UserError, match=match) as e:
        check_train_state(state, "ckpt.pt")
    assert "\n" not in str(e.value) and str(e.value).startswith("ckpt.pt")
