"""Label tables: the official Cityscapes labelId -> trainId map, palettes, ADE20K, ClassTable round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repsep.data.labels import (
    ADE20K,
    CITYSCAPES,
    CITYSCAPES_LABELS,
    LABELID_TO_TRAINID,
    TRAINID_TO_LABELID,
    ClassTable,
)


def test_labelid_to_trainid_matches_official_table():
    expected = [255] * 7 + [0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                            255, 255, 16, 17, 18]
    assert LABELID_TO_TRAINID.dtype == np.uint8 and LABELID_TO_TRAINID.shape == (256,)
    assert LABELID_TO_TRAINID[:34].tolist() == expected
    assert (LABELID_TO_TRAINID[34:] == 255).all()
    assert TRAINID_TO_LABELID.tolist() == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert (LABELID_TO_TRAINID[TRAINID_TO_LABELID] == np.arange(19)).all()


def test_cityscapes_tables():
    assert len(CITYSCAPES_LABELS) == 35 and CITYSCAPES_LABELS[-1].name == "license plate"
    assert CITYSCAPES.num_classes == 19 and CITYSCAPES.ignore_index == 255
    assert CITYSCAPES.classes[0] == "road" and CITYSCAPES.classes[-1] == "bicycle"
    assert CITYSCAPES.palette[0] == (128, 64, 128) and CITYSCAPES.palette[13] == (0, 0, 142)
    by_id = {label.id: label for label in CITYSCAPES_LABELS}
    for train_id, name in enumerate(CITYSCAPES.classes):
        label = by_id[int(TRAINID_TO_LABELID[train_id])]
        assert label.name == name and label.color == CITYSCAPES.palette[train_id]


def test_ade20k_table():
    assert ADE20K.num_classes == 150
    assert ADE20K.classes[:3] == ("wall", "building", "sky") and ADE20K.classes[-1] == "flag"
    assert ADE20K.classes[7] == "bed"  # mmseg's trailing space is stripped
    assert ADE20K.palette[0] == (120, 120, 120)


def test_class_table_round_trips_through_json():
    for table in (CITYSCAPES, ADE20K):
        assert ClassTable.from_dict(json.loads(json.dumps(table.to_dict()))) == table


def test_class_table_rejects_mismatched_palette():
    with pytest.raises(ValueError, match="2 classes but 1 palette"):
        ClassTable("x", ("a", "b"), ((0, 0, 0),))
