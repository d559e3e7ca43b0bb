"""Seeded stratified subsets, the whole-split pre-scan and the dataset fingerprint."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repsep.data import open_dataset
from repsep.data.scan import scan_split
from repsep.data.subset import subset_indices
from repsep.errors import UserError


class _Groups:
    """A stand-in with the two members subset_indices uses: 6 images of city a, 3 of b, 1 of c."""

    def __init__(self) -> None:
        self.groups = ["a"] * 6 + ["b"] * 3 + ["c"]

    def __len__(self) -> int:
        return len(self.groups)

    def group_of(self, index: int) -> str:
        return self.groups[index]


def test_subset_is_stratified_seeded_and_not_the_first_n():
    ds = _Groups()
    picks = subset_indices(ds, 5, seed=0)
    groups = [ds.groups[i] for i in picks]
    # shares 3.0 / 1.5 / 0.5 -> floors 3 / 1 / 0; the one image left goes to the largest remainder, b and c tie
    # at 0.5 and b comes first in stratum order
    assert (groups.count("a"), groups.count("b"), groups.count("c")) == (3, 2, 0)
    assert [ds.groups[i] for i in subset_indices(ds, 7, seed=0)].count("c") == 1  # 4.2 / 2.1 / 0.7 -> 4 / 2 / 1
    assert picks == sorted(picks) and picks == subset_indices(ds, 5, seed=0)
    assert picks != [0, 1, 2, 3, 4]
    assert subset_indices(ds, 5, seed=1) != picks or subset_indices(ds, 5, seed=2) != picks
    assert subset_indices(ds, None) == list(range(10)) == subset_indices(ds, 99)


def _copy(root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(root, dst)
    return dst


def test_scan_finds_a_bad_label_anywhere_before_work(synthcity_small, tmp_path):
    root = _copy(synthcity_small, tmp_path)
    ds = open_dataset(f"synthcity:{root}", "val")
    scan_split(ds)
    last = ds.labels[-1]
    label = np.asarray(Image.open(last)).copy()
    label[0, 0] = 77
    Image.fromarray(label).save(last)
    with pytest.raises(UserError, match=rf"{last.name}: values \[77\]"):
        scan_split(open_dataset(f"synthcity:{root}", "val"))
    scan_split(open_dataset(f"synthcity:{root}", "val"), full=False)  # headers only: the value is not read


def test_scan_refuses_small_images_mismatched_sizes_and_all_ignore(synthcity_small, tmp_path):
    root = _copy(synthcity_small, tmp_path)
    ds = open_dataset(f"synthcity:{root}", "val")
    with pytest.raises(UserError, match="smaller than the 128x128"):
        scan_split(ds, min_size=(128, 128))
    Image.new("L", (10, 10)).save(ds.labels[2])
    with pytest.raises(UserError, match=r"label is 10x10 \(WxH\)"):
        scan_split(ds)
    for path in ds.labels:
        if path.name.endswith("_labelTrainIds.png"):
            Image.new("L", (128, 64), 255).save(path)
    with pytest.raises(UserError, match="no labelled pixel"):
        scan_split(open_dataset(f"synthcity:{root}", "val"))


def test_fingerprint_is_location_free_and_content_sensitive(synthcity_small, tmp_path):
    a = open_dataset(f"synthcity:{synthcity_small}", "val").fingerprint()
    root = _copy(synthcity_small, tmp_path)
    assert open_dataset(f"synthcity:{root}", "val").fingerprint() == a
    assert open_dataset(f"synthcity:{root}", "train").fingerprint() != a
    ds = open_dataset(f"synthcity:{root}", "val")
    with ds.images[0].open("ab") as f:
        f.write(b"\0")
    assert open_dataset(f"synthcity:{root}", "val").fingerprint() != a
