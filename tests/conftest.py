"""Shared test settings: few threads (2-core CI), deterministic torch."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def synthcity_small(tmp_path_factory):
    """A SynthCity folder (Cityscapes layout, open it as ``synthcity:PATH``): 12 train / 8 val at 64x128, seed 0."""
    from repsep.data.synthcity import generate

    return generate(tmp_path_factory.mktemp("synthcity") / "small", 12, 8, size=(64, 128), seed=0, workers=1)


TINY_TRAIN_OVERRIDES = ("data.crop=[64, 128]", "data.scale=[64, 128]", "data.batch_size=2", "data.num_workers=0",
                        "model.img_size=[64, 128]", "model.embed_dim=48", "model.num_heads=2", "schedule.iters=2",
                        "schedule.ckpt_interval=2", "schedule.log_interval=1", "optim.warmup_iters=1")
"""``--set`` items that shrink the synthcity_tiny recipes to a seconds-long run on :func:`synthcity_small`."""


@pytest.fixture(scope="session")
def tiny_run(synthcity_small, tmp_path_factory):
    """A finished 2-iteration synthcity_tiny_rsseg run folder (holds model_final.pt) on :func:`synthcity_small`."""
    from repsep.config import load_config
    from repsep.engine.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = load_config("synthcity_tiny_rsseg", [f"data.spec=synthcity:{synthcity_small}", *TINY_TRAIN_OVERRIDES])
    train(cfg, out, progress=False)
    return out
