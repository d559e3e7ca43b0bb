"""Tell a dataset root's layout from its folders (``repsep-bench data check PATH`` without ``--layout``)."""

from __future__ import annotations

from pathlib import Path

from repsep.errors import UserError

LAYOUT_CHOICES = ("cityscapes", "ade20k", "acdc[:fog|night|rain|snow|all]", "darkzurich",
                  "foggy_cityscapes[:0.005|0.01|0.02]", "rain_cityscapes", "pascal_context59", "coco_stuff164k",
                  "coco_stuff10k")
"""What ``--layout`` accepts: a spec kind, with the variant after ``:`` where the kind has several."""


def _dirs(folder: Path) -> set[str]:
    try:
        return {p.name for p in folder.iterdir() if p.is_dir()}
    except OSError:
        return set()


def detect_layouts(root: str | Path) -> list[str]:
    """Every layout whose marker folders ``root`` holds (spec kinds, in :data:`LAYOUT_CHOICES` order)."""
    root = Path(root)
    top = _dirs(root)
    found = []
    if {"leftImg8bit", "gtFine"} <= top:
        found.append("cityscapes")
    if "rgb_anon_trainvaltest" in top:
        found.append("acdc")
    elif "rgb_anon" in top:
        inner = _dirs(root / "rgb_anon")
        if inner & {"fog", "night", "rain", "snow"}:
            found.append("acdc")
        elif inner & {"train", "val", "test"}:
            found.append("darkzurich")
    if {"images", "annotations"} <= top:
        splits = _dirs(root / "images") | _dirs(root / "annotations")
        for kind, marks in (("ade20k", {"training", "validation"}), ("coco_stuff164k", {"train2017", "val2017"}),
                            ("coco_stuff10k", {"train2014", "test2014"})):
            if splits & marks:
                found.append(kind)
    if "leftImg8bit_foggy" in top:
        found.append("foggy_cityscapes")
    if "leftImg8bit_rain" in top:
        found.append("rain_cityscapes")
    voc = root / "VOC2010" if "VOC2010" in top else root
    if {"JPEGImages", "SegmentationClassContext"} <= _dirs(voc):
        found.append("pascal_context59")
    return found


def resolve_layout(root: str | Path, layout: str) -> tuple[str, bool]:
    """(spec of ``root`` in ``layout``, whether it was detected). ``layout`` ``auto`` detects it; several matches
    are refused with the ``--layout`` values to choose from; none falls back to ``cityscapes`` (detected=False)."""
    kind, _, variant = layout.partition(":")
    if kind != "auto":
        if kind not in {c.partition("[")[0] for c in LAYOUT_CHOICES}:
            raise UserError(f"--layout {layout}: choose cityscapes or one of {', '.join(LAYOUT_CHOICES[1:])}, auto")
        return f"{kind}:{root}" + (f":{variant}" if variant else ""), True
    found = detect_layouts(root)
    if len(found) > 1:
        raise UserError(f"{root}: holds the folders of several layouts ({', '.join(found)}); name one with "
                        f"--layout {' or --layout '.join(found)}")
    return (f"{found[0]}:{root}", True) if found else (f"cityscapes:{root}", False)
