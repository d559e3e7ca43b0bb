"""`corrupt --corrupt-on model` (corruption in batches on the model's device) against the DataLoader-worker path."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from corruption_fixtures import IDS, make_tiny_model

import corruptions.device_sweep as device_sweep
import repsep.engine.inference as inference
from corruptions.backends import get_backend
from corruptions.dataset import DatasetView
from corruptions.device_sweep import CleanSample, CleanShard, corrupted_batches, model_inputs, smallest_int_dtype
from corruptions.evaluate import Sweep, SweepConfig
from corruptions.suite import image_seed
from repsep.data.cityscapes import CityscapesDataset
from repsep.data.transforms import EvalTransform
from repsep.io import read_json

# random (torch port), deterministic (torch port), no torch port (reference fallback, worker path)
CORRUPTIONS = "gaussian_noise,contrast,glass_blur"
OUTPUTS = ("robustness.json", "robustness.csv", "robustness.md", "per_image.npz")


@pytest.fixture(scope="module", autouse=True)
def glass_blur_without_a_port():
    """Every corruption has a torch port now; without glass_blur's, these tests keep a reference fallback cell."""
    from corruptions.backends.torch_backend import PORTS

    with pytest.MonkeyPatch.context() as mp:
        mp.delitem(PORTS, "glass_blur")
        yield


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep_device")
    make_tiny_model(tmp)
    argv = ["corrupt", "--model", str(tmp / "model.pt"), "--backend", "torch", "--severities", "1,3"]
    return tmp, argv


def _sweep(argv: list[str], out, monkeypatch) -> dict[str, int]:
    """Run a sweep into ``out``; count the cells each path evaluated."""
    calls = {"workers": 0, "model": 0}
    for module, name, path in ((inference, "evaluate_dataset", "workers"), (device_sweep, "evaluate_cell", "model")):
        real = getattr(module, name)

        def spy(*args, _real=real, _path=path, **kwargs):
            calls[_path] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    assert run_cli([*argv, "--out", str(out)]) == 0
    monkeypatch.undo()
    return calls


@pytest.fixture(scope="module")
def runs(setup):
    """The same sweep through the worker path, and through the device path with and without the image cache."""
    tmp, argv = setup
    argv = [*argv, "--corruptions", CORRUPTIONS]
    calls = {}
    with pytest.MonkeyPatch.context() as mp:
        for name, extra in (("workers", ["--corrupt-on", "workers"]), ("model", ["--corrupt-batch", "2"]),
                            ("model_nocache", ["--corrupt-on", "model", "--cache-gb", "0"])):
            calls[name] = _sweep([*argv, *extra], tmp / name, mp)
    return tmp, calls


def _without_corrupt_on(path) -> dict:
    result = read_json(path / "robustness.json")
    result.pop("corrupt_on")
    return result


@pytest.mark.parametrize("name", ["model", "model_nocache"])
def test_device_path_equals_worker_path(runs, name):
    tmp, calls = runs
    assert calls["workers"] == {"workers": 7, "model": 0}
    assert calls[name] == {"workers": 2, "model": 5}  # glass_blur x 2 severities has no torch port: workers
    workers, model = tmp / "workers", tmp / name
    assert read_json(workers / "robustness.json")["corrupt_on"] == "workers"
    assert read_json(model / "robustness.json")["corrupt_on"] == "model"
    for cell in sorted(p.name for p in (workers / "cells").iterdir()):
        a, b = (torch.load(d / "cells" / cell, weights_only=True) for d in (workers, model))
        assert torch.equal(a["conf"], b["conf"]) and torch.equal(a["areas"], b["areas"]) and a["ids"] == b["ids"]
    assert _without_corrupt_on(workers) == _without_corrupt_on(model)
    for output in OUTPUTS[1:]:
        assert (workers / output).read_bytes() == (model / output).read_bytes(), output
    result = read_json(model / "robustness.json")
    assert result["backend_per_cell"]["glass_blur"] == {"1": "reference", "3": "reference"}
    assert result["backend_per_cell"]["gaussian_noise"] == {"1": "torch", "3": "torch"}
    # not vacuous: the corruptions change the predictions
    clean, noisy = (torch.load(model / "cells" / f"{c}.pt", weights_only=True)["conf"]
                    for c in ("clean", "gaussian_noise-3"))
    assert not torch.equal(clean, noisy)


@pytest.mark.parametrize(("first", "then"), [("workers", "model"), ("model", "workers")])
def test_resume_across_corrupt_on_gives_the_uninterrupted_result(setup, runs, first, then, monkeypatch):
    tmp, argv = setup
    out = tmp / f"resumed_{first}"
    _sweep([*argv, "--corruptions", "gaussian_noise", "--corrupt-on", first], out, monkeypatch)  # 3 cells saved
    calls = _sweep([*argv, "--corruptions", CORRUPTIONS, "--corrupt-on", then], out, monkeypatch)
    assert sum(calls.values()) == 4  # contrast and glass_blur, 2 severities each; the rest were reused
    full = tmp / then
    for output in OUTPUTS:
        assert (out / output).read_bytes() == (full / output).read_bytes(), output


def _sample(image: np.ndarray, sample_id: str) -> CleanSample:
    return CleanSample(torch.from_numpy(image), torch.zeros(image.shape[:2], dtype=torch.uint8), sample_id)


@pytest.mark.parametrize("corruption", ["gaussian_noise", "contrast"])
def test_batches_of_two_sizes_equal_one_image_at_a_time(corruption):
    rng = np.random.default_rng(0)
    sizes = [(40, 56), (48, 64), (40, 56), (40, 56), (48, 64), (48, 64)]
    samples = [_sample(rng.integers(0, 256, (*s, 3), dtype=np.uint8), f"img{k}") for k, s in enumerate(sizes)]
    backend = get_backend("torch")
    batches = list(corrupted_batches(samples, backend, corruption, 3, 5, torch.device("cpu"), batch_size=2))
    assert [[s.id for s in batch] for batch, _ in batches] == [["img0"], ["img1"], ["img2", "img3"], ["img4", "img5"]]
    by_size = sorted(samples, key=lambda s: tuple(s.image.shape))
    batches += corrupted_batches(by_size, backend, corruption, 3, 5, torch.device("cpu"), batch_size=3)
    assert [len(batch) for batch, _ in batches[4:]] == [3, 3]
    for batch, images in batches:
        assert images.dtype == torch.uint8 and images.shape == (len(batch), *batch[0].image.shape)
        for sample, image in zip(batch, images, strict=True):
            alone = backend.corrupt(sample.image.numpy(), corruption, 3, image_seed(sample.id, corruption, 3, 5))
            assert np.array_equal(image.numpy(), alone), sample.id


@pytest.mark.parametrize("scale", [None, (64, 96), (32, 48), (50, 90)])
def test_model_inputs_equal_the_eval_transform(scale):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    transform = EvalTransform(scale=scale)
    batch = model_inputs(torch.from_numpy(images), transform)
    for image, x in zip(images, batch, strict=True):
        expected = transform({"image": image, "label": np.zeros((64, 96), np.int64), "id": "x"})["image"]
        assert x.is_contiguous() and torch.equal(x, expected)


class _Counting(DatasetView):
    loads = 0

    def load(self, index):
        type(self).loads += 1
        return super().load(index)


def test_clean_shard_decodes_once_when_it_fits(setup):
    tmp, _ = setup
    base = CityscapesDataset(tmp / "cs", "val")
    shard = CleanShard(_Counting(base), torch.device("cpu"), num_workers=0, max_bytes=2**20)
    first, second = list(shard), list(shard)
    assert _Counting.loads == 3 and len(shard) == 3 and shard.cache is not None
    assert [s.id for s in first] == [s.id for s in second] == list(IDS)
    assert first[0].label.dtype == torch.uint8 and torch.equal(first[0].label.long(), torch.from_numpy(
        base.load(0)["label"]))
    _Counting.loads = 0
    too_small = CleanShard(_Counting(base), torch.device("cpu"), max_bytes=64 * 96 * 4)  # one image and label fit
    assert len(list(too_small)) == len(list(too_small)) == 3 and _Counting.loads == 6 and too_small.cache is None


def test_smallest_int_dtype():
    assert smallest_int_dtype(np.array([0, 18, 255])) == np.uint8
    assert smallest_int_dtype(np.array([-1, 3])) == np.int16
    assert smallest_int_dtype(np.array([0, 70000])) == np.int32
    assert smallest_int_dtype(np.array([2**40])) == np.int64


def test_cells_on_a_gpu_are_recorded_per_device(setup):
    tmp, _ = setup
    base = CityscapesDataset(tmp / "cs", "val")
    cfg = SweepConfig(model="m", backend="torch", corruptions=("gaussian_noise", "glass_blur"))
    on_gpu, workers = Sweep(cfg, base, "cuda"), Sweep(replace(cfg, corrupt_on="workers"), base, "cuda")
    assert on_gpu.source(("gaussian_noise", 1)) == "torch:cuda" and workers.source(("gaussian_noise", 1)) == "torch"
    assert on_gpu.source(("glass_blur", 1)) == workers.source(("glass_blur", 1)) == "reference"
    assert Sweep(cfg, base, "cpu").source(("gaussian_noise", 1)) == "torch"


def test_bad_options_exit_2(setup, capsys):
    tmp, argv = setup
    out = ["--corruptions", "contrast", "--out", str(tmp / "bad")]
    assert run_cli([*argv, *out, "--corrupt-on", "gpu"]) == 2
    assert "--corrupt-on 'gpu': choose from: auto, model, workers" in capsys.readouterr().err
    assert run_cli([*argv[:-4], *out, "--corrupt-on", "model"]) == 2  # the reference backend corrupts per image
    assert "--corrupt-on model: needs a batched backend" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_gloo_equals_one_process(setup):
    tmp, argv = setup
    # without glass_blur: the torchrun processes do not see this module's removal of its torch port
    sweep = [*argv, "--corruptions", "gaussian_noise,contrast", "--corrupt-batch", "2"]
    assert run_cli([*sweep, "--out", str(tmp / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29632",
           "-m", "repsep.cli", *sweep, "--out", str(tmp / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for output in OUTPUTS:
        assert (tmp / "ddp" / output).read_bytes() == (tmp / "one" / output).read_bytes(), output
