"""The corruption thread count (corruptions/threads.py chooses it from the machine's load) changes only the
speed: the torch backend's pixels are the same with 1 and 3 threads, for every ported corruption and severity (at
256x512, so torch's intra-op parallelism, which starts at 32768 elements, really splits the work)."""

from __future__ import annotations

import pytest
import torch

from corruptions.backends.registry import get_backend
from corruptions.suite import ALL_CORRUPTIONS
from repsep.data.synthcity import image_rng, render_scene

BACKEND = get_backend("torch")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.from_numpy(render_scene(image_rng(0, "val", 0), (256, 512))[0][None])


@pytest.mark.parametrize("corruption", [c for c in ALL_CORRUPTIONS if BACKEND.supports(c)])
def test_pixels_do_not_depend_on_the_thread_count(images, corruption):
    before = torch.get_num_threads()
    try:
        for severity in range(1, 6):
            out = []
            for threads in (1, 3):
                torch.set_num_threads(threads)
                out.append(BACKEND.corrupt_batch(images.clone(), corruption, severity, [11]))
            assert torch.equal(out[0], out[1]), (corruption, severity)
    finally:
        torch.set_num_threads(before)
