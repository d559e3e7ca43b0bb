"""Class tables shipped as data (``repsep/data/tables/<name>.json``): names, RGB palette, ignore index, source.

Each JSON file holds ``name``, ``source`` (where the names, order and colours come from), ``label_encoding`` (what
the values of the dataset's label PNGs mean), ``classes``, ``palette`` and ``ignore_index``; COCO-Stuff also holds
``stuffthingmap_id_to_trainId`` (official stuffthingmaps id -> train id).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from repsep.data.labels import ClassTable

TABLES_DIR = Path(__file__).resolve().parent


@cache
def table_data(name: str) -> dict[str, Any]:
    """The parsed JSON of table ``name`` (``pascal_context59``, ``coco_stuff171``)."""
    with open(TABLES_DIR / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def load_table(name: str) -> ClassTable:
    """The :class:`ClassTable` of the shipped table ``name``."""
    d = table_data(name)
    return ClassTable.from_dict({k: d[k] for k in ("name", "classes", "palette", "ignore_index")})


@cache
def coco_stuffthingmap_lut() -> np.ndarray:
    """np.int16[256]: official COCO-Stuff stuffthingmaps value (0..181, 255 unlabeled) -> train id (0..170, 255);
    -1 for the values that are no class (the 11 unused COCO thing ids, 182..254)."""
    lut = np.full(256, -1, dtype=np.int16)
    for raw, train_id in table_data("coco_stuff171")["stuffthingmap_id_to_trainId"].items():
        lut[int(raw)] = train_id
    lut.flags.writeable = False
    return lut
