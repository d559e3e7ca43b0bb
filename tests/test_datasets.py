"""Cityscapes / ADE20K loaders on tiny hand-made folders: decoding, ordering, and every bad-input error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from repsep.data import open_dataset
from repsep.data.ade20k import ADE20KDataset
from repsep.data.cityscapes import CityscapesDataset
from repsep.data.transforms import EvalTransform, TrainTransform
from repsep.errors import UserError

H, W = 8, 16


def _png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _cityscapes(root, stems=("bcity_000001_000019", "acity_000000_000019", "acity_000002_000019"), split="val"):
    for stem in stems:
        city = stem.split("_")[0]
        _png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", np.full((H, W, 3), 100, np.uint8))
        ids = np.full((H, W), 7, np.uint8)  # road
        ids[:, :4] = 26  # car -> trainId 13
        ids[0, 0] = 0  # unlabeled -> 255
        _png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", ids)
    return root


def _ade(root, stems=("ADE_val_00000002", "ADE_val_00000001")):
    for stem in stems:
        _png(root / "images" / "validation" / f"{stem}.jpg", np.full((H, W, 3), 50, np.uint8))
        ann = np.zeros((H, W), np.uint8)
        ann[:, 8:] = 1  # wall -> 0
        ann[0, :] = 150  # flag -> 149
        _png(root / "annotations" / "validation" / f"{stem}.png", ann)
    return root


def test_cityscapes_labelids_are_mapped_and_ids_sorted(tmp_path):
    ds = CityscapesDataset(_cityscapes(tmp_path), "val")
    assert len(ds) == 3 and ds.spec == f"cityscapes:{tmp_path}" and ds.class_table.num_classes == 19
    assert [ds.image_id(i) for i in range(3)] == ["acity_000000_000019", "acity_000002_000019",
                                                  "bcity_000001_000019"]
    sample = ds[0]
    assert sample["image"].dtype == np.uint8 and sample["image"].shape == (H, W, 3)
    label = sample["label"]
    assert label.dtype == np.int64 and label[0, 0] == 255 and label[1, 0] == 13 and label[1, 8] == 0


def test_cityscapes_prefers_label_train_ids(tmp_path):
    root = _cityscapes(tmp_path, stems=("acity_000000_000019",))
    train_ids = np.full((H, W), 18, np.uint8)
    _png(root / "gtFine/val/acity/acity_000000_000019_gtFine_labelTrainIds.png", train_ids)
    assert (CityscapesDataset(root, "val").load(0)["label"] == 18).all()


def test_ade20k_reduce_zero_label(tmp_path):
    ds = open_dataset(f"ade20k:{_ade(tmp_path)}", "val")
    assert isinstance(ds, ADE20KDataset) and ds.class_table.num_classes == 150
    assert [ds.image_id(i) for i in range(2)] == ["ADE_val_00000001", "ADE_val_00000002"]
    label = ds.load(0)["label"]
    assert label[1, 0] == 255 and label[1, 9] == 0 and (label[0] == 149).all()


def _upper_suffix(path, suffix: str):
    """Rename ``path`` to end in ``suffix`` instead of its own extension (``x.png`` -> ``x.PNG``)."""
    return path.rename(path.with_name(path.name[: -len(path.suffix)] + suffix))


def test_cityscapes_upper_case_extensions_are_read(tmp_path):
    lower = CityscapesDataset(_cityscapes(tmp_path / "lower"), "val")
    root = _cityscapes(tmp_path / "upper")
    for f in sorted(root.rglob("*.png")):
        _upper_suffix(f, ".PNG")
    upper = CityscapesDataset(root, "val")
    assert upper.ids == lower.ids and len(upper) == 3
    assert all(p.suffix == ".PNG" for p in upper.images + upper.labels)
    assert np.array_equal(upper.load(0)["label"], lower.load(0)["label"])  # labelIds mapped, not skipped


def test_cityscapes_upper_case_train_ids_are_preferred(tmp_path):
    root = _cityscapes(tmp_path, stems=("acity_000000_000019",))
    _png(root / "gtFine/val/acity/acity_000000_000019_gtFine_labelTrainIds.PNG", np.full((H, W), 18, np.uint8))
    assert (CityscapesDataset(root, "val").load(0)["label"] == 18).all()


@pytest.mark.parametrize("image_suffix, label_suffix", [(".JPG", ".PNG"), (".jpeg", ".png"), (".JPEG", ".png")])
def test_ade20k_extensions_in_any_case_are_read(tmp_path, image_suffix, label_suffix):
    root = _ade(tmp_path)
    for f in sorted((root / "images" / "validation").iterdir()):
        _upper_suffix(f, image_suffix)
    for f in sorted((root / "annotations" / "validation").iterdir()):
        _upper_suffix(f, label_suffix)
    ds = ADE20KDataset(root, "val")
    assert ds.ids == ["ADE_val_00000001", "ADE_val_00000002"]
    assert (ds.load(0)["label"][0] == 149).all()


def test_images_are_converted_to_rgb(tmp_path):
    root = _cityscapes(tmp_path, stems=("acity_000000_000019",))
    image = root / "leftImg8bit/val/acity/acity_000000_000019_leftImg8bit.png"
    _png(image, np.full((H, W), 77, np.uint8))  # grayscale
    assert CityscapesDataset(root, "val").load(0)["image"].shape == (H, W, 3)
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    _png(image, rgba)
    out = CityscapesDataset(root, "val").load(0)["image"]
    assert out.shape == (H, W, 3) and (out[..., 0] == 200).all() and (out[..., 1] == 0).all()


def test_getitem_with_transforms(tmp_path):
    ds = CityscapesDataset(_cityscapes(tmp_path), "val", transform=EvalTransform())
    out = ds[1]
    assert out["image"].shape == (3, H, W) and out["label"].shape == (H, W) and out["id"] == ds.image_id(1)
    ds.transform = TrainTransform(crop_size=(4, 8), scale=(H, W), ratio_range=(1.0, 1.5))
    a, b = ds[1, 123], ds[1, 123]
    assert a["image"].shape == (3, 4, 8) and a["image"].dtype.is_floating_point
    assert a["image"].equal(b["image"]) and a["label"].equal(b["label"])


def _corrupt(kind, root):
    """Apply one kind of damage to a valid tiny Cityscapes tree; return the file the error must name."""
    img = root / "leftImg8bit/val/acity/acity_000000_000019_leftImg8bit.png"
    lab = root / "gtFine/val/acity/acity_000000_000019_gtFine_labelIds.png"
    tid = root / "gtFine/val/acity/acity_000000_000019_gtFine_labelTrainIds.png"
    if kind == "no_label":
        lab.unlink()
        return img
    if kind == "size":
        _png(lab, np.full((H + 1, W), 7, np.uint8))
    elif kind == "train_id_19":
        _png(tid, np.full((H, W), 19, np.uint8))
        return tid
    elif kind == "label_id_34":
        _png(lab, np.full((H, W), 34, np.uint8))
    elif kind == "truncated":
        data = img.read_bytes()
        img.write_bytes(data[: len(data) // 2])
        return img
    elif kind == "zero_byte":
        img.write_bytes(b"")
        return img
    elif kind == "not_an_image":
        lab.write_bytes(b"hello, not a png")
    elif kind == "sixteen_bit":
        _png(lab, np.full((H, W), 7, np.uint16), mode=None)
    elif kind == "rgb_label":
        _png(lab, np.full((H, W, 3), 7, np.uint8))
    elif kind == "rgba_label":
        _png(lab, np.full((H, W, 4), 7, np.uint8))
    return lab


@pytest.mark.parametrize("kind", ["no_label", "size", "train_id_19", "label_id_34", "truncated", "zero_byte",
                                  "not_an_image", "sixteen_bit", "rgb_label", "rgba_label"])
def test_bad_files_raise_user_error_naming_the_file(tmp_path, kind):
    root = _cityscapes(tmp_path)
    bad = _corrupt(kind, root)
    with pytest.raises(UserError) as err:
        CityscapesDataset(root, "val").load(0)
    message = str(err.value)
    assert str(bad) in message and "\n" not in message


def test_ade20k_value_above_150(tmp_path):
    root = _ade(tmp_path)
    bad = _png(root / "annotations/validation/ADE_val_00000001.png", np.full((H, W), 151, np.uint8))
    with pytest.raises(UserError) as err:
        ADE20KDataset(root, "val").load(0)
    assert "[151]" in str(err.value) and str(bad) in str(err.value)


@pytest.mark.parametrize("spec, match", [
    ("cityscapes:{missing}", "root folder not found"),
    ("cityscapes:{empty}", "folder not found"),
    ("ade20k:{empty}", "folder not found"),
    ("kitti:/x", "unknown kind"),
    ("cityscapes", "missing the folder"),
])
def test_bad_specs_and_folders(tmp_path, spec, match):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=match):
        open_dataset(spec.format(missing=tmp_path / "nope", empty=tmp_path / "empty"), "val")


def test_over_long_dataset_path_is_one_line(tmp_path):
    path = tmp_path / ("d" * 300)
    with pytest.raises(UserError, match="cannot read the dataset \\(File name too long\\)") as err:
        open_dataset(f"cityscapes:{path}", "val")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_empty_split_folder(tmp_path):
    (tmp_path / "leftImg8bit" / "val" / "acity").mkdir(parents=True)
    with pytest.raises(UserError, match="no \\*/\\*_leftImg8bit.png files"):
        CityscapesDataset(tmp_path, "val")


def test_default_synthcity_is_generated_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSEP_CACHE", str(tmp_path))
    monkeypatch.setattr("repsep.data.SYNTHCITY_DEFAULT", {"num_train": 2, "num_val": 1, "size": (32, 64), "seed": 0})
    ds = open_dataset("synthcity", "val")
    assert len(ds) == 1 and ds.spec == "synthcity" and ds.class_table.name == "cityscapes"
    folders = [p for p in tmp_path.iterdir()]
    assert len(folders) == 1 and folders[0].name.startswith("synthcity-")
    mtime = (folders[0] / "synthcity_meta.json").stat().st_mtime_ns
    assert len(open_dataset("synthcity", "train")) == 2
    assert (folders[0] / "synthcity_meta.json").stat().st_mtime_ns == mtime
