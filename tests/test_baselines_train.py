"""The baselines train through the project's trainer (synthcity_tiny_* recipes) and export deployed."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_TRAIN_OVERRIDES

from repsep.config import load_config
from repsep.engine.checkpoint import load_model
from repsep.engine.train import train


@pytest.mark.parametrize("arch", ["upernet_vit", "segmenter_mask"])
def test_tiny_recipe_trains_and_exports_deployed(arch, synthcity_small, tmp_path):
    cfg = load_config(f"synthcity_tiny_{arch}", [f"data.spec=synthcity:{synthcity_small}", *TINY_TRAIN_OVERRIDES])
    train(cfg, tmp_path / "run", progress=False)
    loaded = load_model(tmp_path / "run" / "model_final.pt")
    assert loaded.model_config.name == arch and loaded.model.aux_head is None
    state = torch.load(tmp_path / "run" / "model_final.pt", weights_only=True)["state_dict"]
    assert not any(k.startswith("aux_head.") for k in state)
    with torch.no_grad():
        assert loaded.model(torch.randn(1, 3, 64, 128)).shape == (1, 19, 64, 128)
