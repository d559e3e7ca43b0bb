"""Property tests (hypothesis): the dataset readers give back exactly the label maps written to disk, and the
segmentation metrics keep their invariants on random predictions, labels and class counts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from repsep.data.ade20k import ADE20KDataset
from repsep.data.cityscapes import CityscapesDataset
from repsep.data.labels import CITYSCAPES, LABELID_TO_TRAINID, MAX_CITYSCAPES_LABELID
from repsep.metrics import SegEvaluator, confusion_matrix, per_image_areas, segmentation_metrics

SETTINGS = settings(deadline=None, max_examples=50)
TRAINIDS = [*range(CITYSCAPES.num_classes), 255]


def _maps(values: list[int], max_images: int = 3):
    """Lists of 1..max_images uint8 label maps of one random size (1..24 x 1..24) drawn from ``values``."""
    return st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(lambda hw: st.lists(
        arrays(np.uint8, hw, elements=st.sampled_from(values)), min_size=1, max_size=max_images))


def _write_cityscapes(root: Path, maps: list[np.ndarray], suffix: str) -> list[str]:
    """Images and labels (``suffix`` = labelTrainIds or labelIds) under two cities; returns the ids in file order."""
    ids = []
    for i, label in enumerate(maps):
        city = ("aachen", "bremen")[i % 2]
        stem = f"{city}_{i:06d}_000019"
        for folder in ("leftImg8bit", "gtFine"):
            (root / folder / "val" / city).mkdir(parents=True, exist_ok=True)
        image = np.stack([label, 255 - label, label // 2], -1)
        Image.fromarray(image).save(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png")
        Image.fromarray(label).save(root / "gtFine" / "val" / city / f"{stem}_gtFine_{suffix}.png")
        ids.append(stem)
    return sorted(ids)


@SETTINGS
@given(maps=_maps(TRAINIDS))
def test_cityscapes_trainids_read_back_unchanged(maps):
    with tempfile.TemporaryDirectory() as tmp:
        ids = _write_cityscapes(Path(tmp), maps, "labelTrainIds")
        ds = CityscapesDataset(tmp, "val")
        assert [ds.image_id(i) for i in range(len(ds))] == ids
        for i, stem in enumerate(ids):
            sample = ds.load(i)
            expected = maps[int(stem.split("_")[1])]
            assert sample["label"].dtype == np.int64 and np.array_equal(sample["label"], expected)
            assert sample["image"].shape == (*expected.shape, 3) and np.array_equal(sample["image"][..., 0], expected)


@SETTINGS
@given(maps=_maps(list(range(MAX_CITYSCAPES_LABELID + 1))))
def test_cityscapes_labelids_map_through_the_official_table(maps):
    with tempfile.TemporaryDirectory() as tmp:
        ids = _write_cityscapes(Path(tmp), maps, "labelIds")
        ds = CityscapesDataset(tmp, "val")
        for i, stem in enumerate(ids):
            raw = maps[int(stem.split("_")[1])]
            label = ds.load(i)["label"]
            assert np.array_equal(label, LABELID_TO_TRAINID[raw].astype(np.int64))
            assert set(np.unique(label)) <= set(TRAINIDS)


@SETTINGS
@given(maps=_maps(list(range(151)), max_images=2))
def test_ade20k_reduce_zero_label(maps):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images" / "validation").mkdir(parents=True)
        (root / "annotations" / "validation").mkdir(parents=True)
        for i, label in enumerate(maps):
            Image.fromarray(np.stack([label] * 3, -1)).save(root / "images" / "validation" / f"ADE_val_{i:08d}.jpg")
            Image.fromarray(label).save(root / "annotations" / "validation" / f"ADE_val_{i:08d}.png")
        ds = ADE20KDataset(root, "val")
        for i, raw in enumerate(maps):
            expected = np.where(raw == 0, 255, raw.astype(np.int64) - 1)  # 0 = other -> ignore, k -> k - 1
            assert np.array_equal(ds.load(i)["label"], expected)


@st.composite
def predictions(draw):
    """(pred, label, C): B random images of one random size, labels in 0..C-1 or 255, predictions in 0..C-1."""
    c = draw(st.integers(1, 12))
    b, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 16)), draw(st.integers(1, 16))
    label = draw(arrays(np.int64, (b, h, w), elements=st.sampled_from([*range(c), 255])))
    pred = draw(arrays(np.int64, (b, h, w), elements=st.integers(0, c - 1)))
    return torch.from_numpy(pred), torch.from_numpy(label), c


@SETTINGS
@given(data=predictions())
def test_metric_invariants(data):
    pred, label, c = data
    valid = label != 255
    conf = confusion_matrix(pred, label, c)
    assert conf.shape == (c, c) and conf.dtype == torch.int64
    assert int(conf.sum()) == int(valid.sum())
    assert torch.equal(conf.sum(1), torch.bincount(label[valid], minlength=c))  # rows = ground truth
    assert torch.equal(conf.sum(0), torch.bincount(pred[valid], minlength=c))  # cols = prediction on valid pixels

    scores = segmentation_metrics(conf)
    iou = np.asarray(scores["IoU"])
    finite = iou[~np.isnan(iou)]
    assert ((finite >= 0) & (finite <= 100)).all()
    present = (conf.sum(0) + conf.sum(1)).numpy() > 0
    assert np.array_equal(~np.isnan(iou), present)  # NaN exactly for classes in neither GT nor prediction
    if present.any():
        assert scores["mIoU"] == np.nanmean(iou)
        assert scores["aAcc"] == pytest.approx(100 * float(torch.diagonal(conf).sum()) / int(valid.sum()), rel=1e-12)
    else:
        assert np.isnan(scores["mIoU"]) and np.isnan(scores["aAcc"])

    evaluator = SegEvaluator(c)
    evaluator.process(pred, label, [f"img{i}" for i in range(pred.shape[0])])
    per_image = evaluator.per_image()
    dataset_areas = [a.numpy() for a in (torch.diagonal(conf), conf.sum(0) + conf.sum(1) - torch.diagonal(conf),
                                         conf.sum(0), conf.sum(1))]
    for name, total in zip(("intersect", "union", "pred_area", "label_area"), dataset_areas, strict=True):
        assert np.array_equal(per_image[name].sum(0), total)
    for i in range(pred.shape[0]):
        single = per_image_areas(pred[i], label[i], c)
        assert all(np.array_equal(per_image[n][i], a.numpy())
                   for n, a in zip(("intersect", "union", "pred_area", "label_area"), single, strict=True))
    assert torch.equal(evaluator.conf, conf)
