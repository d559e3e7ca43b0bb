"""``repsep-bench data convert``: official COCO-Stuff annotations -> the ``*_labelTrainIds.png`` mmseg's converters
write (and the readers prefer).

- 164k: ``annotations/{train2017,val2017}/<stem>.png`` (stuffthingmaps_trainval2017.zip: 0..181, 255 = unlabeled)
  -> ``<out>/annotations/<same>/<stem>_labelTrainIds.png`` (0..170, 255), through the table of mmseg's
  ``tools/dataset_converters/coco_stuff164k.py``.
- 10k: ``annotations/<stem>.mat`` (cocostuff-10k-v1.1.zip, field ``S``: 0 = unlabeled, 1..182 = COCO id + 1) listed by
  ``imageLists/{train,test}.txt`` -> ``<out>/annotations/{train2014,test2014}/<stem>_labelTrainIds.png`` (0 =
  unlabeled, 1..171; the reader applies reduce_zero_label) and the images into ``<out>/images/<same>/``, as mmseg's
  ``coco_stuff10k.py`` does.

Only new files are written, each atomically; a file already there is kept (so a rerun continues) unless
``overwrite``. Nothing is deleted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from repsep.data.base import invalid_values, read_label_png
from repsep.data.context_coco import stuffthing_to_trainids
from repsep.data.tables import coco_stuffthingmap_lut
from repsep.errors import UserError
from repsep.io import atomic_save

CONVERTIBLE = ("coco_stuff164k", "coco_stuff10k")


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    atomic_save(path, lambda f: Image.fromarray(array).save(f, format="PNG"))


def _place(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (a copy where links are impossible)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _convert_164k(src: Path, out: Path, overwrite: bool) -> Iterator[Path]:
    folders = [f for f in ("train2017", "val2017") if (src / "annotations" / f).is_dir()]
    if not folders:
        raise UserError(f"{src}: no annotations/train2017 or annotations/val2017 folder (COCO-Stuff 164k "
                        "stuffthingmaps)")
    same = out.resolve() == src.resolve()
    for folder in folders:
        raws = sorted(p for p in (src / "annotations" / folder).iterdir()
                      if p.suffix.lower() == ".png" and not p.name.lower().endswith("_labeltrainids.png"))
        for raw in raws:
            target = out / "annotations" / folder / f"{raw.stem}_labelTrainIds.png"
            if not same:
                image = src / "images" / folder / f"{raw.stem}.jpg"
                if image.is_file() and not (out / "images" / folder / image.name).exists():
                    _place(image, out / "images" / folder / image.name)
            if target.exists() and not overwrite:
                continue
            _save_png(target, stuffthing_to_trainids(read_label_png(raw), raw))
            yield target


def _read_mat(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    try:
        s = loadmat(path)["S"]
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except KeyError:
        raise UserError(f"{path}: no field S (expected a COCO-Stuff 10k annotation)") from None
    except Exception as e:  # scipy raises ValueError / TypeError / MatReadError on foreign files
        raise UserError(f"{path}: not a readable MATLAB file ({type(e).__name__})") from None
    s = np.asarray(s)
    if s.ndim != 2 or not np.issubdtype(s.dtype, np.integer) and not np.issubdtype(s.dtype, np.floating):
        raise UserError(f"{path}: field S is {s.dtype} {s.shape}, expected a 2-D label map")
    if s.size and (s.min() < 0 or s.max() > 182 or not np.array_equal(s, np.round(s))):
        raise UserError(f"{path}: field S has values outside 0..182 (0 = unlabeled, 1..182 = COCO ids + 1)")
    return s.astype(np.uint8)


def _convert_10k(src: Path, out: Path, overwrite: bool) -> Iterator[Path]:
    lut = coco_stuffthingmap_lut()
    shifted = np.full(256, -1, dtype=np.int16)  # 1-based COCO id -> 10k label (0 unlabeled, 1..171)
    shifted[0] = 0
    shifted[1:183] = np.where(lut[:182] >= 0, lut[:182] + 1, -1)
    for listing, folder in (("train", "train2014"), ("test", "test2014")):
        path = src / "imageLists" / f"{listing}.txt"
        if not path.is_file():
            raise UserError(f"{path}: split list not found (COCO-Stuff 10k imageLists/{listing}.txt)")
        for stem in (s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()):
            image, mat = src / "images" / f"{stem}.jpg", src / "annotations" / f"{stem}.mat"
            if not image.is_file():
                raise UserError(f"{path}: lists {stem} but {image} is missing")
            target = out / "annotations" / folder / f"{stem}_labelTrainIds.png"
            if overwrite or not target.exists():
                s = _read_mat(mat)
                bad = invalid_values(s, shifted >= 0)
                if bad:
                    raise UserError(f"{mat}: values {bad[:8]} are unused COCO-Stuff ids")
                _save_png(target, shifted[s].astype(np.uint8))
                yield target
            if not (out / "images" / folder / image.name).exists():
                _place(image, out / "images" / folder / image.name)


def convert(layout: str, src: str | Path, out: str | Path | None = None, overwrite: bool = False) -> Iterator[Path]:
    """Convert the official annotations under ``src`` (into ``out``, default ``src``); yields each file written."""
    src = Path(src)
    if layout not in CONVERTIBLE:
        raise UserError(f"--layout {layout}: data convert handles {', '.join(CONVERTIBLE)}")
    if not src.is_dir():
        raise UserError(f"{src}: COCO-Stuff root folder not found")
    out = Path(out) if out else src
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    return (_convert_164k if layout == "coco_stuff164k" else _convert_10k)(src, out, overwrite)
