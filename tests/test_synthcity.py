"""SynthCity generator: determinism, layouts, class coverage, knobs, atomic output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from repsep.data import open_dataset
from repsep.data.labels import CITYSCAPES, LABELID_TO_TRAINID
from repsep.data.synthcity import (
    LABELID_TO_ADE,
    ROAD,
    SceneKnobs,
    generate,
    image_rng,
    render_scene,
)
from repsep.errors import UserError

SIZE = (64, 128)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("sc") / "synth", 3, 2, size=SIZE, seed=7, workers=1)


def test_cityscapes_layout_and_consistent_label_files(small):
    files = _files(small)
    assert "leftImg8bit/train/synthville/synthville_000002_000019_leftImg8bit.png" in files
    assert "gtFine/val/synthville/synthville_000001_000019_gtFine_labelTrainIds.png" in files
    assert len(files) == 5 * 3 + 1
    meta = json.loads(files["synthcity_meta.json"])
    assert meta["seed"] == 7 and meta["size"] == list(SIZE) and meta["knobs"]["thin_share"] == 0.5
    gt = small / "gtFine/val/synthville"
    ids = np.asarray(Image.open(gt / "synthville_000000_000019_gtFine_labelIds.png"))
    train = np.asarray(Image.open(gt / "synthville_000000_000019_gtFine_labelTrainIds.png"))
    assert ids.dtype == np.uint8 and ids.shape == SIZE and np.array_equal(LABELID_TO_TRAINID[ids], train)
    ds = open_dataset(f"synthcity:{small}", "val")
    assert len(ds) == 2 and ds.image_id(0) == "synthville_000000_000019" and ds.spec == f"synthcity:{small}"
    assert ds.load(1)["image"].shape == (*SIZE, 3)


def test_output_is_byte_identical_whatever_the_worker_count(small, tmp_path):
    again = generate(tmp_path / "again", 3, 2, size=SIZE, seed=7, workers=2)
    assert _files(again) == _files(small)
    other = generate(tmp_path / "other", 3, 2, size=SIZE, seed=8, workers=1)
    assert _files(other)["leftImg8bit/val/synthville/synthville_000000_000019_leftImg8bit.png"] != \
        _files(small)["leftImg8bit/val/synthville/synthville_000000_000019_leftImg8bit.png"]


def test_existing_output_is_kept_or_refused(small, tmp_path):
    before = _files(small)
    assert generate(small, 3, 2, size=SIZE, seed=7) == small and _files(small) == before
    with pytest.raises(UserError, match="already exists"):
        generate(small, 3, 2, size=SIZE, seed=9)
    assert [p.name for p in small.parent.iterdir() if p.name.endswith(".tmp")] == []
    (tmp_path / "empty").mkdir()
    assert (generate(tmp_path / "empty", 1, 1, size=SIZE, seed=7) / "synthcity_meta.json").is_file()


def test_ade20k_layout(tmp_path):
    root = generate(tmp_path / "ade", 1, 2, size=SIZE, seed=1, layout="ade20k", workers=1)
    ds = open_dataset(f"ade20k:{root}", "val")
    assert [ds.image_id(i) for i in range(2)] == ["ADE_val_00000001", "ADE_val_00000002"]
    raw = np.asarray(Image.open(root / "annotations/validation/ADE_val_00000001.png"))
    assert set(np.unique(raw)) <= set(LABELID_TO_ADE.tolist()) and (raw == 7).any()  # 7 = ADE road
    assert (ds.load(0)["label"][raw == 7] == 6).all()  # reduce_zero_label


def test_scene_is_a_pure_function_of_its_seed():
    a = render_scene(image_rng(0, "val", 3), SIZE)
    b = render_scene(image_rng(0, "val", 3), SIZE)
    c = render_scene(image_rng(0, "train", 3), SIZE)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and not np.array_equal(a[0], c[0])


def test_most_classes_occur():
    present = np.zeros(256, bool)
    for i in range(30):
        present[LABELID_TO_TRAINID[render_scene(image_rng(0, "val", i), (96, 192))[1]]] = True
    assert present[: CITYSCAPES.num_classes].sum() >= 15


def test_texture_contrast_knob_controls_road_texture():
    def road_std(contrast):
        image, label = render_scene(image_rng(0, "val", 0), (128, 256),
                                    SceneKnobs(texture_contrast=contrast, lighting_range=0.0))
        return image[label == ROAD].std(axis=0).mean()

    assert road_std(0.0) < road_std(1.0) < road_std(2.0)


def test_object_density_and_thin_share_knobs():
    def share(knobs, classes):
        counts = np.zeros(256)
        for i in range(6):
            counts += np.bincount(render_scene(image_rng(0, "val", i), (96, 192), knobs)[1].ravel(), minlength=256)
        return counts[classes].sum() / counts.sum()

    vehicles = [26, 27, 28, 31]
    assert share(SceneKnobs(thin_share=1.0), vehicles) == 0.0
    assert share(SceneKnobs(object_density=0.0), vehicles + [24, 25, 32, 33, 17]) == 0.0


@pytest.mark.parametrize("kwargs, match", [
    ({"layout": "kitti"}, "--layout"),
    ({"size": (16, 64)}, "--size"),
    ({"num_train": 0, "num_val": 0}, "at least one image"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    args = {"num_train": 1, "num_val": 1, "size": SIZE} | kwargs
    with pytest.raises(UserError, match=match):
        generate(tmp_path / "x", **args)
    with pytest.raises(UserError, match="--thin-share"):
        SceneKnobs(thin_share=1.5)
