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
