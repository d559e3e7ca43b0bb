"""The CPU loops (corruptions.backends.numba_kernels) give the torch arithmetic's pixels exactly.

Every port with a loop is run twice on the same images and seeds: with the loops (the CPU default) and with
``torch_ops.CPU_LOOPS`` off (the ports' torch arithmetic, on the CPU). Equal to the grey level, for every severity,
single images and batches, and on pixels that hit the special cases (black, grey, white, where the HSV closed forms
branch); the loops' own output does not depend on the thread count (1 and 3). glass_blur's loop is checked against
its NumPy pipeline in tests/test_torch_glass_spatter.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corruptions.backends import numba_kernels
from corruptions.backends import torch_ops as ops
from corruptions.backends.torch_backend import TorchBackend
from repsep.data.synthcity import image_rng, render_scene

LOOPED = ("gaussian_noise", "speckle_noise", "impulse_noise", "shot_noise", "brightness", "saturate", "contrast",
          "snow", "fog", "frost", "spatter", "defocus_blur", "motion_blur")


def _images(size: tuple[int, int]) -> torch.Tensor:
    """Two SynthCity scenes with black, mid-grey and white patches: uint8 [2, H, W, 3]."""
    images = np.stack([render_scene(image_rng(0, "val", i), size)[0] for i in range(2)])
    images[0, :6, :6], images[0, 6:12, :6], images[1, :6, :6] = 0, 128, 255
    return torch.from_numpy(images)


def _both(monkeypatch, images: torch.Tensor, name: str, severity: int, cpu_batch: int) -> tuple[np.ndarray, ...]:
    backend = TorchBackend(cpu_batch=cpu_batch)
    looped = backend.corrupt_batch(images, name, severity, [3, 4]).numpy()
    monkeypatch.setattr(ops, "CPU_LOOPS", False)
    plain = backend.corrupt_batch(images, name, severity, [3, 4]).numpy()
    monkeypatch.setattr(ops, "CPU_LOOPS", True)
    return looped, plain


@pytest.mark.parametrize("name", LOOPED)
def test_loops_equal_the_torch_arithmetic(monkeypatch, name):
    images = _images((48, 80))
    for severity in range(1, 6):
        for cpu_batch in (1, 2):
            looped, plain = _both(monkeypatch, images, name, severity, cpu_batch)
            assert np.array_equal(looped, plain), (name, severity, cpu_batch, np.abs(looped - plain.astype(int)).max())


@pytest.mark.parametrize("name", ["shot_noise", "saturate", "snow", "fog", "glass_blur"])
def test_loops_do_not_depend_on_the_thread_count(monkeypatch, name):
    images = _images((64, 96))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = TorchBackend().corrupt_batch(images, name, 3, [3, 4]).numpy()
        torch.set_num_threads(3)
        three = TorchBackend().corrupt_batch(images, name, 3, [3, 4]).numpy()
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one, three)


def test_the_loops_were_used_and_hit_the_special_cases(monkeypatch):
    # a black pixel under brightness becomes grey (c, c, c); a grey pixel under saturate keeps hue 0 (R = v)
    calls = []
    monkeypatch.setattr(numba_kernels, "_run", lambda *a, _f=numba_kernels._run: calls.append(a[0]) or _f(*a))
    images = _images((48, 80))
    bright = TorchBackend().corrupt_batch(images, "brightness", 1, [0, 0]).numpy()
    assert (bright[0, :6, :6] == int(np.float32(0.1) * np.float32(255))).all()  # 25: V 0 -> 0.1
    sat = TorchBackend().corrupt_batch(images, "saturate", 4, [0, 0]).numpy()  # S' = clip(0 * 5 + 0.1) = 0.1
    assert (sat[0, 6:12, :6, 0] == 128).all() and (sat[0, 6:12, :6, 1:] == 115).all()  # v (1 - 0.1) = 115.2
    assert numba_kernels._brightness in calls and numba_kernels._saturate in calls
