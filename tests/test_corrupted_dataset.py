"""CorruptedDataset / FromDiskCorrupted follow the dataset contract and are worker-count independent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from corruption_fixtures import IDS, make_cityscapes
from torch.utils.data import DataLoader

from corruptions.backends import get_backend
from corruptions.dataset import CorruptedDataset, DatasetView, FromDiskCorrupted
from corruptions.suite import image_seed
from repsep.data.cityscapes import CityscapesDataset
from repsep.data.transforms import EvalTransform
from repsep.errors import UserError


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return CityscapesDataset(make_cityscapes(tmp_path_factory.mktemp("cs")), "val")


def test_load_corrupts_image_with_per_image_seed_and_keeps_labels(base):
    backend = get_backend("reference")
    ds = CorruptedDataset(base, "gaussian_noise", 4, backend, base_seed=3)
    assert len(ds) == 3 and [ds.image_id(i) for i in range(3)] == list(IDS)
    assert ds.class_table == base.class_table and ds.split == "val"
    for i in range(3):
        clean, noisy = base.load(i), ds.load(i)
        seed = image_seed(clean["id"], "gaussian_noise", 4, 3)
        assert np.array_equal(noisy["image"], backend.corrupt(clean["image"], "gaussian_noise", 4, seed))
        assert not np.array_equal(noisy["image"], clean["image"])
        assert np.array_equal(noisy["label"], clean["label"]) and noisy["id"] == clean["id"]
    other_base_seed = CorruptedDataset(base, "gaussian_noise", 4, backend, base_seed=4).load(0)["image"]
    assert not np.array_equal(other_base_seed, ds.load(0)["image"])


def test_getitem_applies_base_transform_and_num_images(base):
    base.transform = EvalTransform()
    try:
        ds = CorruptedDataset(base, "fog", 2, get_backend("reference"), indices=[0, 2])
        item = ds[1]
        assert len(ds) == 2 and item["image"].dtype == torch.float32 and item["image"].shape == (3, 64, 96)
        assert item["label"].dtype == torch.int64 and item["id"] == IDS[2] and ds.image_id(0) == IDS[0]
        with pytest.raises(IndexError):
            ds.load(2)
        assert len(DatasetView(base)) == 3
    finally:
        base.transform = None


def _all_images(ds, workers: int) -> dict[str, np.ndarray]:
    loader = DataLoader(ds, batch_size=None, num_workers=workers, shuffle=False)
    return {s["id"]: np.asarray(s["image"]) for s in loader}


@pytest.mark.parametrize("corruption", ["impulse_noise", "frost"])
def test_same_pixels_whatever_the_worker_count(base, corruption):
    ds = CorruptedDataset(base, corruption, 3, get_backend("reference"))
    serial, parallel = _all_images(ds, 0), _all_images(ds, 2)
    assert serial.keys() == parallel.keys() == set(IDS)
    for k in IDS:
        assert np.array_equal(serial[k], parallel[k]), k
    reordered = ds.load(2)["image"]  # and whatever ran before
    assert np.array_equal(reordered, serial[IDS[2]])


def test_from_disk_reads_materialized_layout(base, tmp_path):
    from corruptions.materialize import materialize, open_tree

    backend = get_backend("reference")
    on_the_fly = CorruptedDataset(base, "contrast", 5, backend)
    materialize(base, ("contrast",), (5,), tmp_path, backend, progress=False)
    tree, _ = open_tree(tmp_path)
    disk = FromDiskCorrupted(base, tree, "contrast", 5)
    for i in range(3):
        a, b = disk.load(i), on_the_fly.load(i)
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["label"], b["label"])
    with pytest.raises(UserError, match="contrast/4: not found"):
        FromDiskCorrupted(base, tree, "contrast", 4)
    edited = disk.image_path(1)
    edited.write_bytes(edited.read_bytes() + b"x")  # a hand-edited image is named, not silently used
    with pytest.raises(UserError, match=f"{edited.name}: content differs from what repsep-bench materialize wrote"):
        disk.load(1)
