"""corruptions.threads: the corruption thread count chosen for the situation, and where the sweep applies it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corruptions import threads as th
from corruptions.backends.base import CorruptionBackend
from corruptions.dataset import CorruptedDataset
from corruptions.device_sweep import CleanSample, corrupted_batches
from repsep.errors import UserError


@pytest.mark.parametrize(("where", "cores", "load", "ranks", "expected"), [
    ("worker", 16, 0.0, 1, 1),      # workers run side by side: one thread each, whatever the machine
    ("worker", 2, 5.0, 1, 1),
    ("process", 2, 0.1, 1, 2),      # idle 2 cores: both (22x the reference at 512x512, 15.2x on one)
    ("process", 2, 2.0, 1, 1),      # another 2-thread process: one (21.6x, vs 1.03x on two)
    ("process", 2, 1.0, 1, 1),
    ("process", 2, 9.0, 1, 1),      # never below one
    ("process", 16, 4.0, 1, 12),
    ("process", 16, 4.0, 2, 6),     # two ranks on this host share the free cores
    ("process", 16, 0.0, 3, 5),
    ("process", 4, 0.0, 8, 1),
    ("device", 16, 0.0, 1, None),   # on a GPU the CPU count is left alone
])
def test_choices(where, cores, load, ranks, expected):
    threads, reason = th.choose_threads(where, cores=cores, load=load, ranks=ranks)
    assert threads == expected and reason


def test_override_wins():
    assert th.choose_threads("worker", cores=2, load=0, override=3)[0] == 3
    assert th.choose_threads("process", cores=2, load=0, override="torch")[0] is None
    assert th.parse_override(" 4 ") == 4 and th.parse_override("TORCH") == "torch"
    assert th.parse_override(None) is None and th.parse_override("") is None
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(UserError, match="REPSEP_CORRUPT_THREADS"):
            th.parse_override(bad)
    with pytest.raises(ValueError):
        th.choose_threads("gpu", cores=2, load=0)


def test_plan_reads_the_environment(monkeypatch):
    monkeypatch.setenv(th.ENV, "3")
    assert th.plan("process")[0] == 3
    monkeypatch.delenv(th.ENV)
    monkeypatch.setattr(th, "available_cores", lambda: 8)
    monkeypatch.setattr(th, "machine_load", lambda: 2.0)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert th.plan("process")[0] == 3  # (8 cores - load 2) / 2 ranks
    assert th.plan("worker")[0] == 1


def test_machine_load_counts_runnable_threads():
    assert 0.0 <= th.machine_load() < 10_000


def test_context_sets_and_restores():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that setting 1 is a change the test can see (and restoring 2 too)
    try:
        with th.corruption_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with th.corruption_threads(None):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


class _Recorder(CorruptionBackend):
    """Records the torch thread count each call ran with; returns the image unchanged."""

    name = "recorder"

    def __init__(self):
        self.seen: list[int] = []

    def supports(self, corruption):
        return True

    def corrupt(self, image, corruption, severity, seed):
        import cv2

        self.seen.append(torch.get_num_threads())
        out = image.copy()
        out[..., 0], out[..., 1] = torch.get_num_threads(), cv2.getNumThreads()  # seen from a worker process too
        return out


class _Base:
    spec, class_table, split, transform = "fake", None, "val", None

    def __len__(self):
        return 2

    def load(self, i):
        return {"id": f"img{i}", "image": np.zeros((32, 32, 3), np.uint8), "label": np.zeros((32, 32), np.uint8)}


def test_dataset_and_device_path_corrupt_with_the_chosen_count():
    before = torch.get_num_threads()
    backend = _Recorder()
    ds = CorruptedDataset(_Base(), "fog", 1, backend, threads=1)
    ds.load(0)
    assert backend.seen == [1] and torch.get_num_threads() == before
    samples = [CleanSample(id="a", image=torch.zeros((32, 32, 3), dtype=torch.uint8), label=torch.zeros((32, 32)))]
    batched = _Recorder()
    list(corrupted_batches(samples, batched, "fog", 1, 0, torch.device("cpu"), 1, threads=1))
    assert batched.seen == [1] and torch.get_num_threads() == before


def test_dataloader_workers_corrupt_with_one_torch_and_one_opencv_thread():
    import cv2

    cv2.setNumThreads(2)  # the parent's OpenCV pool: a worker would inherit it
    loader = torch.utils.data.DataLoader(CorruptedDataset(_Base(), "fog", 1, _Recorder()), batch_size=None,
                                         num_workers=1)
    for sample in loader:
        assert sample["image"][0, 0, 0] == 1 and sample["image"][0, 0, 1] == 1
