"""The single-factor ablation ladder: every rung changes exactly one thing from the one before."""

from __future__ import annotations

import pytest
import torch

from repsep.errors import UserError
from repsep.models import build_model, model_config
from repsep.models.registry import LADDER, ladder_configs


def _parts(model) -> set[str]:
    """Top-level modules present (and the head's stride-4 projection, and the fusion's discrepancy)."""
    names = {n for n, m in model.named_children() if m is not None}
    if model.head.low_proj is not None:
        names.add("head.low_proj")
    if model.fusion.discrepancy is not None:
        names.add("fusion.discrepancy")
    return names


def test_each_rung_adds_exactly_one_part():
    rungs = ladder_configs()
    added = []
    for (_, before), (_, after) in zip(rungs, rungs[1:], strict=False):
        a, b = _parts(build_model(before)), _parts(build_model(after))
        assert a <= b
        added.append(sorted(b - a))
    assert added == [["aux_head"], ["stem"], ["head.low_proj"], ["fusion.discrepancy"], ["sasm"],
                     ["dca", "region_classifier"]]
    assert [rung for rung, *_ in LADDER] == ["baseline", "+aux", "+stem", "+skip", "+discrepancy", "+SASM", "+DCA"]


def test_defaults_are_the_models_they_were():
    rsseg, base = model_config("rsseg_vit"), model_config("baseline_vit")
    assert (rsseg.has_stem, rsseg.has_discrepancy, rsseg.has_low_level_skip, rsseg.has_aux_head) == (True,) * 4
    assert (base.has_stem, base.has_discrepancy, base.has_low_level_skip, base.has_aux_head) == (False,) * 4
    assert ladder_configs()[-1][1] == rsseg and ladder_configs()[0][1] == base
    pyramid = model_config("baseline_pvt")
    assert pyramid.has_low_level_skip and not pyramid.has_stem  # stage 1 is the pyramid's stride-4 feature


def test_baseline_with_aux_head_is_deeply_supervised_and_deploys_without_it():
    torch.manual_seed(0)
    model = build_model(model_config("baseline_vit", aux_head=True)).train()
    images, target = torch.randn(2, 3, 64, 128), torch.randint(0, 19, (2, 64, 128))
    losses = model.losses(model(images), target)
    assert set(losses) == {"loss_ce", "loss_aux", "loss"}
    assert model.config.aux_modules == ("aux_head",)
    deployed = model.eval().deploy()
    assert deployed.aux_head is None and deployed(images).shape == (2, 19, 64, 128)


def test_impossible_combinations_are_one_line():
    with pytest.raises(UserError, match="model.low_level_skip: needs a stride-4 feature"):
        model_config("baseline_vit", low_level_skip=True)
    with pytest.raises(UserError, match="model.aux_head: DCA needs the auxiliary head"):
        model_config("rsseg_vit", aux_head=False)
    with pytest.raises(UserError, match="model.discrepancy"):
        model_config("rsseg_vit", discrepancy="median")


def test_a_saved_config_from_before_the_switches_still_loads():
    """config.yaml / exports written before stem, low_level_skip and aux_head existed load as what they were."""
    import dataclasses

    from repsep.config import config_from_dict
    from repsep.models.config import ADDED_FIELDS

    for name in ("baseline_vit", "rsseg_vit"):
        saved = {k: v for k, v in dataclasses.asdict(model_config(name)).items() if k not in ADDED_FIELDS}
        assert config_from_dict({"model": saved}, "old config.yaml").model == model_config(name)
