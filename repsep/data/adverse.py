"""Real adverse-condition datasets labelled with the 19 Cityscapes train classes (evaluated as is).

- ACDC (Sakaridis et al., ICCV 2021): ``rgb_anon/<condition>/<split>/<sequence>/<stem>_rgb_anon.png`` with
  ``gt/<condition>/<split>/<sequence>/<stem>_gt_labelTrainIds.png`` (or ``_gt_labelIds.png``); conditions fog, night,
  rain, snow; labelled splits train and val. The root may also be the folder holding the two unzipped packages
  (``rgb_anon_trainvaltest/rgb_anon`` and ``gt_trainval/gt``).
- Dark Zurich (Sakaridis et al., ICCV 2019): ``rgb_anon/val/night/<sequence>/<stem>_rgb_anon.png`` with
  ``gt/val/night/<sequence>/<stem>_gt_labelTrainIds.png`` (or ``_gt_labelIds.png``); only val is labelled.
- Foggy Cityscapes (Sakaridis et al., IJCV 2018): ``leftImg8bit_foggy/<split>/<city>/<stem>_leftImg8bit_foggy_beta_
  <beta>.png`` (beta 0.005, 0.01, 0.02) with the Cityscapes labels ``gtFine/<split>/<city>/<stem>_gtFine_*.png``.
- Rain Cityscapes (Hu et al., CVPR 2019): ``leftImg8bit_rain/<split>/<city>/<stem>_leftImg8bit_rain_alpha_<a>_beta_
  <b>_dropsize_<d>_pattern_<p>.png`` (several rain renderings per scene) with the same ``gtFine`` labels.

Where each layout was confirmed: docs/datasets.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repsep.data.base import SegmentationDataset, Transform, list_files, name_index
from repsep.data.cityscapes import decode_cityscapes_label
from repsep.data.labels import CITYSCAPES
from repsep.errors import UserError

ACDC_CONDITIONS = ("fog", "night", "rain", "snow")
FOGGY_BETAS = ("0.005", "0.01", "0.02")

def split_option(spec: str, choices: tuple[str, ...]) -> tuple[str, str | None]:
    """``kind:PATH[:OPTION]`` -> (PATH, OPTION or None); OPTION is taken only when it is one of ``choices`` (so a
    path that contains ``:`` still works)."""
    kind, _, rest = spec.partition(":")
    path, sep, last = rest.rpartition(":")
    if sep and last in choices:
        return path, last
    if sep and path and "/" not in last and not Path(rest).exists() and Path(path).is_dir():
        raise UserError(f"dataset {spec!r}: {kind} has no variant {last!r}; choose {', '.join(choices)}")
    return rest, None


class CityscapesLabelled(SegmentationDataset):
    """Cityscapes-labelled pairs: labels are trainIds (``*labelTrainIds.png``) or labelIds mapped to trainIds."""

    trainids_suffix = "labelTrainIds.png"

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return decode_cityscapes_label(raw, path, self.trainids_suffix)


def _pair_labels(images: list[Path], image_suffix: str, gt_folder, label_suffixes: tuple[str, str]
                 ) -> tuple[list[Path], list[str]]:
    """For each image ``<stem><image_suffix>`` the label ``gt_folder(image)/<stem><suffix>`` for the first suffix found;
    UserError naming the first image without one."""
    labels, stems = [], []
    folders: dict[Path, dict[str, Path]] = {}
    for image in images:
        stem = image.name[: -len(image_suffix)]
        gt = gt_folder(image, stem)
        names = folders.setdefault(gt, name_index(gt))
        label = next((names[n] for s in label_suffixes if (n := f"{stem}{s}".lower()) in names), None)
        if label is None:
            raise UserError(f"{image}: no label (expected {gt / (stem + label_suffixes[0])} or {label_suffixes[1]})")
        labels.append(label)
        stems.append(stem)
    return labels, stems


def _anon_root(root: Path, what: str) -> tuple[Path, Path]:
    """(images root, labels root) of an ACDC / Dark Zurich folder: ``rgb_anon`` + ``gt``, or the unzipped packages."""
    if not root.is_dir():
        raise UserError(f"{root}: {what} root folder not found")
    for rgb, gt in (("rgb_anon", "gt"), ("rgb_anon_trainvaltest/rgb_anon", "gt_trainval/gt")):
        if (root / rgb).is_dir():
            return root / rgb, root / gt
    raise UserError(f"{root}: no rgb_anon/ folder ({what} expects rgb_anon/ and gt/)")


class ACDCDataset(CityscapesLabelled):
    """ACDC ``condition`` (fog | night | rain | snow | all) at split train / val; ids ``<condition>_<stem>``, strata
    ``<condition>/<sequence>``."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 condition: str = "all", spec: str | None = None) -> None:
        root = Path(root)
        if condition not in (*ACDC_CONDITIONS, "all"):
            raise UserError(f"ACDC condition {condition!r}: choose {', '.join(ACDC_CONDITIONS)} or all")
        if split not in ("train", "val"):
            raise UserError(f"split {split!r}: ACDC has labelled splits train and val (test labels are not public)")
        rgb, gt = _anon_root(root, "ACDC")
        conditions = ACDC_CONDITIONS if condition == "all" else (condition,)
        present = [c for c in conditions if (rgb / c / split).is_dir()]
        if not present:
            raise UserError(f"{rgb}: no {'/'.join(conditions)}/{split} folder (ACDC {condition} {split} images)")
        missing = [c for c in conditions if c not in present]
        if missing:  # `all` must mean all four: a partial download would be labelled as the whole set
            raise UserError(f"{rgb / missing[0] / split}: not found (ACDC all needs {', '.join(conditions)}; name "
                            f"one condition, e.g. acdc:{root}:{present[0]}, for a partial download)")
        images, labels, ids = [], [], []
        for c in present:
            found = list_files(rgb / c / split, "*/*_rgb_anon.png", f"ACDC {c} {split} images")
            pairs, stems = _pair_labels(found, "_rgb_anon.png",
                                        lambda image, _s, c=c: gt / c / split / image.parent.name,
                                        ("_gt_labelTrainIds.png", "_gt_labelIds.png"))
            images += found
            labels += pairs
            ids += [f"{c}_{s}" for s in stems]
        self.condition = condition
        super().__init__(images, labels, ids, class_table=CITYSCAPES, spec=spec or f"acdc:{root}:{condition}",
                         split=split, transform=transform)

    def group_of(self, index: int) -> str:
        image = self.images[index]
        return f"{image.parent.parent.parent.name}/{image.parent.name}"

    def fingerprint_kind(self) -> str:
        return f"acdc:{self.condition}"


class DarkZurichDataset(CityscapesLabelled):
    """Dark Zurich val (night, labelled); ids are the file stems, strata the sequences."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 spec: str | None = None) -> None:
        root = Path(root)
        if split != "val":
            raise UserError(f"split {split!r}: Dark Zurich has labels for val only")
        rgb, gt = _anon_root(root, "Dark Zurich")
        images = list_files(rgb / "val", "*/*/*_rgb_anon.png", "Dark Zurich val images")
        labels, ids = _pair_labels(images, "_rgb_anon.png",
                                   lambda image, _s: gt / "val" / image.parent.parent.name / image.parent.name,
                                   ("_gt_labelTrainIds.png", "_gt_labelIds.png"))
        super().__init__(images, labels, ids, class_table=CITYSCAPES, spec=spec or f"darkzurich:{root}",
                         split=split, transform=transform)


class _CityscapesVariant(CityscapesLabelled):
    """Cityscapes images re-rendered into ``<folder>/<split>/<city>/`` with the Cityscapes ``gtFine`` labels."""

    def _open(self, root: Path, split: str, folder: str, pattern: str, image_suffix, what: str
              ) -> tuple[list[Path], list[Path], list[str]]:
        if not root.is_dir():
            raise UserError(f"{root}: {what} root folder not found")
        images = list_files(root / folder / split, pattern, f"{what} {split} images")
        labels, names = [], []
        folders: dict[Path, dict[str, Path]] = {}
        for image in images:
            stem, name = image_suffix(image.name)
            gt = root / "gtFine" / split / image.parent.name
            index = folders.setdefault(gt, name_index(gt))
            label = (index.get(f"{stem}_gtFine_labelTrainIds.png".lower())
                     or index.get(f"{stem}_gtFine_labelIds.png".lower()))
            if label is None:
                raise UserError(f"{image}: no label (expected {gt / (stem + '_gtFine_labelTrainIds.png')} or "
                                "_gtFine_labelIds.png)")
            labels.append(label)
            names.append(name)
        return images, labels, names


class FoggyCityscapesDataset(_CityscapesVariant):
    """Foggy Cityscapes at attenuation ``beta`` (0.005 | 0.01 | 0.02); ids are the Cityscapes stems (so they pair
    with clean Cityscapes), strata the cities."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 beta: str = "0.02", spec: str | None = None) -> None:
        root = Path(root)
        if beta not in FOGGY_BETAS:
            raise UserError(f"Foggy Cityscapes beta {beta!r}: choose {', '.join(FOGGY_BETAS)}")
        suffix = f"_leftImg8bit_foggy_beta_{beta}.png"

        def stem_of(name: str) -> tuple[str, str]:
            stem = name[: -len(suffix)]
            return stem, stem

        images, labels, ids = self._open(root, split, "leftImg8bit_foggy", f"*/*{suffix}", stem_of,
                                         f"Foggy Cityscapes (beta {beta})")
        self.beta = beta
        super().__init__(images, labels, ids, class_table=CITYSCAPES,
                         spec=spec or f"foggy_cityscapes:{root}:{beta}", split=split, transform=transform)

    def fingerprint_kind(self) -> str:
        return f"foggy_cityscapes:{self.beta}"


class RainCityscapesDataset(_CityscapesVariant):
    """Rain Cityscapes: every rain rendering of the labelled scenes; ids ``<stem>_rain_alpha_..._pattern_<p>``,
    strata the cities."""

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 spec: str | None = None) -> None:
        root = Path(root)
        marker = "_leftImg8bit_rain_"

        def stem_of(name: str) -> tuple[str, str]:
            stem, _, params = name[: -len(".png")].partition(marker)
            return stem, f"{stem}_rain_{params}"

        images, labels, ids = self._open(root, split, "leftImg8bit_rain", f"*/*{marker}*.png", stem_of,
                                         "Rain Cityscapes")
        super().__init__(images, labels, ids, class_table=CITYSCAPES, spec=spec or f"rain_cityscapes:{root}",
                         split=split, transform=transform)
