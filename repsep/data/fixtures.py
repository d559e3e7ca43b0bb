"""Small datasets in the official layouts of ACDC, Dark Zurich, Foggy / Rain Cityscapes, Pascal Context 59 and
COCO-Stuff 164k / 10k, drawn from SynthCity scenes (``repsep-bench data synth --layout NAME``).

Cityscapes-labelled layouts keep SynthCity's 19 classes (labelIds and labelTrainIds written as the real datasets
name them) and get a cheap look of their condition (fog: depth-dependent haze; night: dark with a blue cast; rain:
streaks; snow: white flakes). Pascal Context / COCO-Stuff layouts re-label SynthCity's classes into plausible
classes of those tables (:data:`PASCAL_CONTEXT_OF`, :data:`COCO_STUFF_OF`). Same arguments, same bytes.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from repsep.data import synthcity as sc
from repsep.data.labels import LABELID_TO_TRAINID
from repsep.data.tables import load_table, table_data
from repsep.errors import UserError
from repsep.io import atomic_write_json, dumps_json, temp_sibling_dir

LAYOUTS = ("acdc", "darkzurich", "foggy_cityscapes", "rain_cityscapes", "pascal_context59", "coco_stuff164k",
           "coco_stuff10k")
META_FILE = "fixture_meta.json"
ACDC_SEQUENCES = {"fog": "GOPR0475", "night": "GOPR0351", "rain": "GOPR0400", "snow": "GOPR0122"}
RAIN_RENDERING = "alpha_0.01_beta_0.005_dropsize_0.01_pattern_1"

_CITYSCAPES_TO_PC = {sc.ROAD: "road", sc.SIDEWALK: "sidewalk", sc.BUILDING: "building", sc.WALL: "wall",
                     sc.FENCE: "fence", sc.LIGHT: "light", sc.SIGN: "sign", sc.VEGETATION: "tree",
                     sc.TERRAIN: "grass", sc.SKY: "sky", sc.PERSON: "person", sc.RIDER: "person", sc.CAR: "car",
                     sc.TRUCK: "truck", sc.BUS: "bus", sc.TRAIN: "train", sc.MOTORCYCLE: "motorbike",
                     sc.BICYCLE: "bicycle"}
_CITYSCAPES_TO_COCO = {sc.ROAD: "road", sc.SIDEWALK: "pavement", sc.BUILDING: "building-other",
                       sc.WALL: "wall-concrete", sc.FENCE: "fence", sc.POLE: "structural-other",
                       sc.LIGHT: "traffic light", sc.SIGN: "stop sign", sc.VEGETATION: "tree", sc.TERRAIN: "grass",
                       sc.SKY: "sky-other", sc.PERSON: "person", sc.RIDER: "person", sc.CAR: "car",
                       sc.TRUCK: "truck", sc.BUS: "bus", sc.TRAIN: "train", sc.MOTORCYCLE: "motorcycle",
                       sc.BICYCLE: "bicycle"}


def _lut(mapping: dict[int, str], classes: tuple[str, ...], offset: int, default: int) -> np.ndarray:
    lut = np.full(256, default, dtype=np.uint8)
    for label_id, name in mapping.items():
        lut[label_id] = classes.index(name) + offset
    return lut


PASCAL_CONTEXT_OF = _lut(_CITYSCAPES_TO_PC, load_table("pascal_context59").classes, 1, 0)
"""SynthCity labelId -> Pascal Context PNG value (0 = background, k = class k - 1); poles and void -> 0."""
COCO_STUFF_OF = _lut(_CITYSCAPES_TO_COCO, load_table("coco_stuff171").classes, 0, 255)
"""SynthCity labelId -> COCO-Stuff train id (0..170); void -> 255."""
_TRAINID_TO_STUFFTHING = np.full(256, 255, dtype=np.uint8)
for _raw, _train in table_data("coco_stuff171")["stuffthingmap_id_to_trainId"].items():
    _TRAINID_TO_STUFFTHING[_train] = int(_raw)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def condition_look(image: np.ndarray, condition: str, rng: np.random.Generator, strength: float = 1.0
                   ) -> np.ndarray:
    """A cheap look of ``condition`` (fog | night | rain | snow) on an RGB uint8 [H, W, 3] image."""
    img = image.astype(np.float32)
    h, w = img.shape[:2]
    rows = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None, None]  # far at the top
    if condition == "fog":
        t = np.exp(-3.0 * strength * (0.3 + rows))
        img = img * t + 200.0 * (1 - t)
    elif condition == "night":
        img = img * np.array([0.25, 0.27, 0.4], dtype=np.float32) + rng.normal(0, 4, img.shape).astype(np.float32)
    elif condition == "rain":
        img = img * 0.8
        for _ in range(max(h * w // 200, 1)):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            img[y : y + 6, x] = 220.0
    elif condition == "snow":
        flakes = rng.random((h, w)) < 0.02
        img = img * 0.9 + 20.0
        img[flakes] = 250.0
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _scenes(split: str, n: int, size: tuple[int, int], seed: int, salt: int = 0):
    for i in range(n):
        rng = sc.image_rng(seed + 7919 * salt, split, i)
        image, label_ids = sc.render_scene(rng, size)
        yield i, image, label_ids, rng


def _cityscapes_gt(folder: Path, stem: str, label_ids: np.ndarray, suffix: str) -> None:
    _put(folder / f"{stem}{suffix}_labelIds.png", _png(label_ids))
    _put(folder / f"{stem}{suffix}_labelTrainIds.png", _png(LABELID_TO_TRAINID[label_ids]))


def _acdc(root: Path, num_train: int, num_val: int, size, seed: int) -> None:
    for salt, (condition, seq) in enumerate(ACDC_SEQUENCES.items()):
        for split, n in (("train", num_train), ("val", num_val)):
            for i, image, label_ids, rng in _scenes(split, n, size, seed, salt + 1):
                stem = f"{seq}_frame_{i:06d}"
                _put(root / "rgb_anon" / condition / split / seq / f"{stem}_rgb_anon.png",
                     _png(condition_look(image, condition, rng)))
                _cityscapes_gt(root / "gt" / condition / split / seq, stem, label_ids, "_gt")


def _darkzurich(root: Path, num_train: int, num_val: int, size, seed: int) -> None:
    for i, image, label_ids, rng in _scenes("val", num_val, size, seed, 5):
        stem = f"GOPR0356_frame_{i:06d}"
        _put(root / "rgb_anon" / "val" / "night" / "GOPR0356" / f"{stem}_rgb_anon.png",
             _png(condition_look(image, "night", rng)))
        _cityscapes_gt(root / "gt" / "val" / "night" / "GOPR0356", stem, label_ids, "_gt")


def _cityscapes_variant(root: Path, num_train: int, num_val: int, size, seed: int, rain: bool) -> None:
    from repsep.data.adverse import FOGGY_BETAS

    for split, n in (("train", num_train), ("val", num_val)):
        for i, image, label_ids, rng in _scenes(split, n, size, seed):
            stem = f"{sc.CITY}_{i:06d}_000019"
            _cityscapes_gt(root / "gtFine" / split / sc.CITY, stem, label_ids, "_gtFine")
            folder = root / ("leftImg8bit_rain" if rain else "leftImg8bit_foggy") / split / sc.CITY
            if rain:
                _put(folder / f"{stem}_leftImg8bit_rain_{RAIN_RENDERING}.png",
                     _png(condition_look(image, "rain", rng)))
                continue
            for k, beta in enumerate(FOGGY_BETAS):
                _put(folder / f"{stem}_leftImg8bit_foggy_beta_{beta}.png",
                     _png(condition_look(image, "fog", rng, strength=0.25 * 2**k)))


def _pascal_context(root: Path, num_train: int, num_val: int, size, seed: int) -> None:
    voc = root / "VOC2010"
    for split, n in (("train", num_train), ("val", num_val)):
        stems = []
        for i, image, label_ids, _ in _scenes(split, n, size, seed):
            stem = f"2008_{i + (0 if split == 'train' else 500000):06d}"
            stems.append(stem)
            _put(voc / "JPEGImages" / f"{stem}.jpg", _jpeg(image))
            _put(voc / "SegmentationClassContext" / f"{stem}.png", _png(PASCAL_CONTEXT_OF[label_ids]))
        _put(voc / "ImageSets" / "SegmentationContext" / f"{split}.txt", "".join(f"{s}\n" for s in stems).encode())


def _coco164k(root: Path, num_train: int, num_val: int, size, seed: int, raw: bool = False) -> None:
    for split, n in (("train2017", num_train), ("val2017", num_val)):
        for i, image, label_ids, _ in _scenes(split[:-4] if split.startswith("train") else "val", n, size, seed):
            stem = f"{i + (0 if split == 'train2017' else 500000):012d}"
            _put(root / "images" / split / f"{stem}.jpg", _jpeg(image))
            train_ids = COCO_STUFF_OF[label_ids]
            _put(root / "annotations" / split / f"{stem}.png", _png(_TRAINID_TO_STUFFTHING[train_ids]))
            if not raw:
                _put(root / "annotations" / split / f"{stem}_labelTrainIds.png", _png(train_ids))


def _coco10k(root: Path, num_train: int, num_val: int, size, seed: int, raw: bool = False) -> None:
    """Converted layout (mmseg's 10k converter output), or with ``raw`` the official cocostuff-10k-v1.1 layout:
    ``images/<stem>.jpg``, ``annotations/<stem>.mat`` (``S``: 0 = unlabeled, 1..182 = COCO ids + 1) and
    ``imageLists/{train,test}.txt``."""
    from scipy.io import savemat

    for split, folder, n in (("train", "train2014", num_train), ("val", "test2014", num_val)):
        stems = []
        for i, image, label_ids, _ in _scenes(split, n, size, seed):
            stem = f"COCO_{folder}_{i:012d}"
            stems.append(stem)
            train_ids = COCO_STUFF_OF[label_ids].astype(np.int64)
            shifted = np.where(train_ids == 255, 0, train_ids + 1).astype(np.uint8)  # 0 = unlabeled
            if not raw:
                _put(root / "images" / folder / f"{stem}.jpg", _jpeg(image))
                _put(root / "annotations" / folder / f"{stem}_labelTrainIds.png", _png(shifted))
                continue
            _put(root / "images" / f"{stem}.jpg", _jpeg(image))
            stuffthing = _TRAINID_TO_STUFFTHING[train_ids.astype(np.uint8)].astype(np.int64)
            official = np.where(stuffthing == 255, 0, stuffthing + 1).astype(np.uint8)
            buf = io.BytesIO()
            savemat(buf, {"S": official})
            _put(root / "annotations" / f"{stem}.mat", buf.getvalue())
        if raw:
            _put(root / "imageLists" / f"{'train' if split == 'train' else 'test'}.txt",
                 "".join(f"{s}\n" for s in stems).encode())


_WRITERS: dict[str, Callable[..., None]] = {
    "acdc": _acdc, "darkzurich": _darkzurich,
    "foggy_cityscapes": lambda *a: _cityscapes_variant(*a, rain=False),
    "rain_cityscapes": lambda *a: _cityscapes_variant(*a, rain=True),
    "pascal_context59": _pascal_context, "coco_stuff164k": _coco164k, "coco_stuff10k": _coco10k,
}


def write_fixture(out: str | Path, layout: str, num_train: int = 4, num_val: int = 4, size: tuple[int, int] = (32, 64),
                  seed: int = 0, raw: bool = False) -> Path:
    """Write a small dataset in ``layout`` (one of :data:`LAYOUTS`) into ``out`` atomically; return ``out``.

    ``num_train`` / ``num_val`` images per split (ACDC: per condition; Dark Zurich: val only). ``raw`` (COCO-Stuff
    only) writes the official annotations instead of the converted ``*_labelTrainIds.png``, for ``data convert``.
    An existing ``out`` is kept when it holds exactly this fixture, else refused.
    """
    out = Path(out)
    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout}: choose one of cityscapes, ade20k, {', '.join(LAYOUTS)}")
    sc.check_counts(num_train, num_val, size)
    meta = {"generator": "synthcity-fixture", "version": sc.GENERATOR_VERSION, "layout": layout, "seed": seed,
            "size": list(size), "num_train": num_train, "num_val": num_val, "raw": raw}
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        existing = out / META_FILE
        if existing.is_file() and existing.read_text(encoding="utf-8") == dumps_json(meta):
            return out
        raise UserError(f"{out}: already exists and is not this fixture; choose another --out or remove it")
    tmp = temp_sibling_dir(out)
    try:
        kwargs = {"raw": raw} if layout.startswith("coco") else {}
        _WRITERS[layout](tmp, num_train, num_val, (int(size[0]), int(size[1])), seed, **kwargs)
        atomic_write_json(tmp / META_FILE, meta)
        if out.is_dir():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
