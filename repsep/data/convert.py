"""``repsep-bench data convert``: official COCO-Stuff annotations -> the ``*_labelTrainIds.png`` mmseg's converters
write (and the readers prefer).

- 164k: ``annotations/{train2017,val2017}/<stem>.png`` (stuffthingmaps_trainval2017.zip: 0..181, 255 = unlabeled)
  -> ``<out>/annotations/<same>/<stem>_labelTrainIds.png`` (0..170, 255), through the table of mmseg's
  ``tools/dataset_converters/coco_stuff164k.py``.
- 10k: ``annotations/<stem>.mat`` (cocostuff-10k-v1.1.zip, field ``S``: 0 = unlabeled, 1..182 = COCO id + 1) listed by
  ``imageLists/{train,test}.txt`` -> ``<out>/annotations/{train2014,test2014}/<stem>_labelTrainIds.png`` (0 =
  unlabeled, 1..171; the reader applies reduce_zero_label) and the images into ``<out>/images/<same>/``, as mmseg's
  ``coco_stuff10k.py`` does.

Only new files are written, each atomically; a file already there is kept (so a rerun continues). ``overwrite``
rewrites only label files this command wrote and nobody changed since: every label file's sha256 is appended to
``<out>/.repsep-bench-convert.jsonl`` before the file is renamed into place, and a file whose content matches no
recorded digest (mmseg's own converter's output, an edited file) is refused. Nothing is deleted.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from repsep.data.base import invalid_values, read_label_png
from repsep.data.context_coco import stuffthing_to_trainids
from repsep.data.tables import coco_stuffthingmap_lut
from repsep.errors import UserError
from repsep.io import atomic_write_bytes
from repsep.manifest import sha256_bytes, sha256_file

CONVERTIBLE = ("coco_stuff164k", "coco_stuff10k")
RECORD = ".repsep-bench-convert.jsonl"


class WrittenLabels:
    """The label files ``data convert`` wrote under ``out``: one JSON line ``{"file", "sha256"}`` per write in
    ``out/RECORD``, appended before the file is renamed into place, so a kill between the two
    leaves a record that the old content does not match. Lines that do not parse (cut by a kill) are ignored."""

    def __init__(self, out: Path) -> None:
        self.out, self.path = out, out / RECORD
        self.digests: dict[str, set[str]] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.digests.setdefault(str(entry["file"]), set()).add(str(entry["sha256"]))
                except (ValueError, KeyError, TypeError):
                    continue

    def _key(self, target: Path) -> str:
        return target.relative_to(self.out).as_posix()

    def may_replace(self, target: Path) -> bool:
        """Whether ``target`` holds content this command wrote there."""
        known = self.digests.get(self._key(target))
        return bool(known) and sha256_file(target) in known

    def save_png(self, target: Path, array: np.ndarray) -> None:
        """Write ``array`` as a PNG at ``target`` (atomically), recorded first."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        data = buffer.getvalue()
        key, digest = self._key(target), sha256_bytes(data)
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:  # a lost line (power cut) only makes --overwrite refuse
            f.write(json.dumps({"file": key, "sha256": digest}) + "\n")
        self.digests.setdefault(key, set()).add(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)

    def refuse_foreign(self, targets: Iterable[Path]) -> None:
        """Before ``overwrite`` writes anything: a UserError for the first existing target it did not write."""
        for target in targets:
            if target.exists() and not self.may_replace(target):
                raise UserError(f"{target}: exists and was not written by repsep-bench data convert (no matching "
                                f"digest in {self.path}: another tool's, a version before that record's, or "
                                "changed since); --overwrite replaces only its own files, so move or delete it "
                                "yourself to regenerate it")


def _place(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (a copy where links are impossible)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _convert_164k(src: Path, out: Path, overwrite: bool) -> Iterator[Path]:
    written = WrittenLabels(out)
    folders = [f for f in ("train2017", "val2017") if (src / "annotations" / f).is_dir()]
    if not folders:
        raise UserError(f"{src}: no annotations/train2017 or annotations/val2017 folder (COCO-Stuff 164k "
                        "stuffthingmaps)")
    same = out.resolve() == src.resolve()
    jobs = [(folder, raw, out / "annotations" / folder / f"{raw.stem}_labelTrainIds.png") for folder in folders
            for raw in sorted(p for p in (src / "annotations" / folder).iterdir()
                              if p.suffix.lower() == ".png" and not p.name.lower().endswith("_labeltrainids.png"))]
    if overwrite:
        written.refuse_foreign(target for _, _, target in jobs)
    for folder, raw, target in jobs:
        if not same:
            image = src / "images" / folder / f"{raw.stem}.jpg"
            if image.is_file() and not (out / "images" / folder / image.name).exists():
                _place(image, out / "images" / folder / image.name)
        if overwrite or not target.exists():
            written.save_png(target, stuffthing_to_trainids(read_label_png(raw), raw))
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
    written = WrittenLabels(out)
    lut = coco_stuffthingmap_lut()
    shifted = np.full(256, -1, dtype=np.int16)  # 1-based COCO id -> 10k label (0 unlabeled, 1..171)
    shifted[0] = 0
    shifted[1:183] = np.where(lut[:182] >= 0, lut[:182] + 1, -1)
    jobs = []
    for listing, folder in (("train", "train2014"), ("test", "test2014")):
        path = src / "imageLists" / f"{listing}.txt"
        if not path.is_file():
            raise UserError(f"{path}: split list not found (COCO-Stuff 10k imageLists/{listing}.txt)")
        for stem in (s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()):
            image = src / "images" / f"{stem}.jpg"
            if not image.is_file():
                raise UserError(f"{path}: lists {stem} but {image} is missing")
            jobs.append((folder, stem, image, out / "annotations" / folder / f"{stem}_labelTrainIds.png"))
    if overwrite:
        written.refuse_foreign(target for *_, target in jobs)
    for folder, stem, image, target in jobs:
        if overwrite or not target.exists():
            mat = src / "annotations" / f"{stem}.mat"
            s = _read_mat(mat)
            bad = invalid_values(s, shifted >= 0)
            if bad:
                raise UserError(f"{mat}: values {bad[:8]} are unused COCO-Stuff ids")
            written.save_png(target, shifted[s].astype(np.uint8))
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
