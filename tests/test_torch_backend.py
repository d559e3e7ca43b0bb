"""The torch corruption backend against the reference (imagecorruptions) on small SynthCity scenes.

Deterministic ports must match within 2 grey levels per pixel; random ports must match the reference's distribution
of (corrupted - clean) over many seeded draws: std within 5 %, and mean within 5 % of the reference mean or, for
near-zero means, within a floor of max(1 grey level, 3 standard errors of the difference of the per-draw means:
fog draws one fractal per image, so its per-draw means spread widely). frost and motion_blur draw their texture,
crop and angle as the package does (NumPy's legacy RNG, seeded alike), so they are compared pixel for pixel.
The full-size comparison is scripts/check_torch_fidelity.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from corruptions.backends import get_backend
from corruptions.backends import torch_ops as ops
from corruptions.backends.torch_backend import DETERMINISTIC, PORTS, TorchBackend
from corruptions.backends.torch_digital import pixelate_torch
from corruptions.suite import ALL_CORRUPTIONS
from repsep.data.synthcity import image_rng, render_scene
from repsep.errors import UserError

SIZE = (64, 128)
RANDOM = sorted(set(PORTS) - DETERMINISTIC)
# Corruptions whose randomness is per image (texture, fractal, angle) need more draws for stable statistics.
DRAWS = {"fog": 96}
MEAN_FLOOR = 1.0  # grey levels


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.stack([render_scene(image_rng(0, "val", i), SIZE)[0] for i in range(6)])


@pytest.fixture(scope="module")
def reference():
    return get_backend("reference")


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend()


def _reference_batch(reference, images: np.ndarray, name: str, severity: int, seeds: list[int]) -> np.ndarray:
    return np.stack([reference.corrupt(im, name, severity, s) for im, s in zip(images, seeds, strict=True)])


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_port_matches_reference_within_2_levels(images, reference, backend, name):
    seeds = list(range(len(images)))
    for severity in range(1, 6):
        ref = _reference_batch(reference, images, name, severity, seeds).astype(np.int16)
        ours = backend.corrupt_batch(torch.from_numpy(images), name, severity, seeds).numpy().astype(np.int16)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() <= 2, f"{name} s{severity}"


def test_pixelate_torch_path_is_pil_exactly(images, reference):
    # the integer torch path (used off CPU) reproduces Pillow's BOX + NEAREST resize bit for bit
    for severity in range(1, 6):
        ours = pixelate_torch(torch.from_numpy(images).permute(0, 3, 1, 2), severity).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(ours, _reference_batch(reference, images, "pixelate", severity, [0] * len(images)))


@pytest.mark.parametrize("name", RANDOM)
def test_random_port_matches_reference_distribution(images, reference, backend, name):
    n = DRAWS.get(name, 48)
    batch = images[np.arange(n) % len(images)]
    seeds = list(range(1000, 1000 + n))
    for severity in (1, 3, 5):
        ref = _reference_batch(reference, batch, name, severity, seeds).astype(np.float64) - batch
        ours = backend.corrupt_batch(torch.from_numpy(batch), name, severity, seeds).numpy().astype(np.float64) - batch
        ref_means, our_means = ref.mean(axis=(1, 2, 3)), ours.mean(axis=(1, 2, 3))
        stderr = math.sqrt((ref_means.var(ddof=1) + our_means.var(ddof=1)) / n)
        tolerance = max(0.05 * abs(ref.mean()), MEAN_FLOOR, 3 * stderr)
        assert abs(ours.mean() - ref.mean()) <= tolerance, f"{name} s{severity} mean"
        assert abs(ours.std() / ref.std() - 1) <= 0.05, f"{name} s{severity} std"


@pytest.mark.parametrize("name", sorted(PORTS))
def test_same_seed_same_pixels_and_batch_invariance(images, backend, name):
    batch = torch.from_numpy(images[:3])
    seeds = [11, 12, 13]
    together = TorchBackend(cpu_batch=3).corrupt_batch(batch, name, 3, seeds)  # one call of the port for all 3
    assert together.dtype == torch.uint8 and together.shape == batch.shape
    assert torch.equal(together, backend.corrupt_batch(batch, name, 3, seeds))
    for b in range(3):
        assert torch.equal(together[b], backend.corrupt_batch(batch[b:b + 1], name, 3, seeds[b:b + 1])[0]), b
    single = backend.corrupt(images[0], name, 3, seeds[0])
    assert np.array_equal(single, together[0].numpy())
    if name not in DETERMINISTIC:
        assert not torch.equal(together[0], backend.corrupt_batch(batch[:1], name, 3, [99])[0])


def test_every_corruption_is_ported_and_a_missing_port_falls_back_to_the_reference(images, reference, backend,
                                                                                    monkeypatch):
    assert all(backend.backend_for(c) == "torch" and backend.supports(c) for c in ALL_CORRUPTIONS)
    monkeypatch.delitem(PORTS, "spatter")  # a corruption without a port runs the reference, pixel for pixel
    assert backend.backend_for("spatter") == "reference" and not backend.supports("spatter")
    ours = backend.corrupt_batch(torch.from_numpy(images[:2]), "spatter", 4, [5, 6]).numpy()
    assert np.array_equal(ours, _reference_batch(reference, images[:2], "spatter", 4, [5, 6]))


def test_known_answers(backend):
    black = np.zeros((32, 48, 3), np.uint8)
    # brightness adds c to HSV V: black -> grey c * 255 = 25.5 at s1, truncated to 25 (as np.uint8 does)
    assert (backend.corrupt(black, "brightness", 1, 0) == 25).all()
    # saturate s5 on grey: S' = 0.2, hue 0 -> (v, 0.8 v, 0.8 v); v = 100/255 -> (100, 80, 80)
    grey = np.full((32, 48, 3), 100, np.uint8)
    out = backend.corrupt(grey, "saturate", 5, 0)
    assert (out[..., 0] == 100).all() and (np.abs(out[..., 1:].astype(int) - 80) <= 1).all()
    # blurs, contrast and pixelate keep a flat image flat
    for name in ("gaussian_blur", "defocus_blur", "zoom_blur", "contrast", "pixelate"):
        assert (np.abs(backend.corrupt(grey, name, 5, 0).astype(int) - 100) <= 1).all(), name


@pytest.mark.parametrize("pads", [(3, 2, 4, 1), (0, 7, 9, 0), (9, 12, 20, 25)])  # the last mirrors twice
def test_pad_modes_match_numpy(pads):
    top, bottom, left, right = pads
    x = torch.arange(2 * 7 * 9, dtype=torch.float32).view(1, 2, 7, 9)
    numpy_mode = {"replicate": "edge", "reflect": "reflect", "symmetric": "symmetric"}
    for mode, np_mode in numpy_mode.items():
        if mode == "reflect" and max(pads) >= 7:
            continue  # torch's reflect pad needs pad < size
        expected = np.pad(x.numpy(), ((0, 0), (0, 0), (top, bottom), (left, right)), mode=np_mode)
        assert np.array_equal(ops.pad(x, top, bottom, left, right, mode).numpy(), expected), mode


def test_large_draws_are_banded_deterministic_and_thread_count_free():
    shape = (3, 512, 1024)  # 1.5 M values per image: above BANDED_NUMEL, so drawn in RNG_BANDS parts
    assert math.prod(shape) >= ops.BANDED_NUMEL
    cpu = torch.device("cpu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.normal(ops.generators([5, 6], cpu), shape, 0.0, 2.0, cpu)
        torch.set_num_threads(2)
        two = ops.normal(ops.generators([5, 6], cpu), shape, 0.0, 2.0, cpu)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)
    assert torch.equal(one[1], ops.normal(ops.generators([6], cpu), shape, 0.0, 2.0, cpu)[0])  # batch-free
    parts = one[0].view(-1).tensor_split(ops.RNG_BANDS)
    assert not torch.equal(parts[0][:1000], parts[1][:1000])  # the bands are independent streams
    for part in parts:  # N(0, 2^2): each band's mean within 5 standard errors, std within 1 %
        assert abs(part.mean().item()) < 5 * 2.0 / math.sqrt(part.numel())
        assert part.std().item() == pytest.approx(2.0, rel=0.01)
    u = ops.uniform(ops.generators([7], cpu), shape, -1.0, 3.0, cpu)
    assert u.min() >= -1.0 and u.max() < 3.0 and u.mean().item() == pytest.approx(1.0, abs=0.01)


def test_poisson_sampler_matches_capped_poisson_moments():
    values = torch.full((1, 200_000), 255, dtype=torch.uint8)
    counts = ops.poisson_capped(ops.generators([3], torch.device("cpu")), values, 12.0, 12).double()
    pmf = [math.exp(-12) * 12 ** k / math.factorial(k) for k in range(12)]
    mean = sum(k * p for k, p in enumerate(pmf)) + 12 * (1 - sum(pmf))
    second = sum(k * k * p for k, p in enumerate(pmf)) + 144 * (1 - sum(pmf))
    assert counts.max() == 12
    assert abs(counts.mean().item() - mean) < 0.02
    assert abs(counts.var().item() - (second - mean ** 2)) < 0.1


def test_bad_input(backend):
    with pytest.raises(ValueError):
        backend.corrupt_batch(torch.zeros((1, 64, 64, 3)), "fog", 1, [0])
    with pytest.raises(ValueError):
        backend.corrupt_batch(torch.zeros((2, 64, 64, 3), dtype=torch.uint8), "fog", 1, [0])
    with pytest.raises(UserError):
        backend.corrupt_batch(torch.zeros((1, 16, 64, 3), dtype=torch.uint8), "fog", 1, [0])
    with pytest.raises(UserError):
        backend.corrupt_batch(torch.zeros((1, 64, 64, 3), dtype=torch.uint8), "fog", 6, [0])
    with pytest.raises(UserError):
        backend.backend_for("rain")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(images):
    batch = torch.from_numpy(images[:2])
    cpu, gpu = TorchBackend("cpu"), TorchBackend("cuda")
    for name in sorted(DETERMINISTIC):
        a = cpu.corrupt_batch(batch, name, 3, [1, 2]).int()
        b = gpu.corrupt_batch(batch.cuda(), name, 3, [1, 2]).cpu().int()
        assert (a - b).abs().max() <= 2, name
