"""Corruption names, groups, named suites, severities and per-image seeds.

Names and parameters follow the ``imagecorruptions`` package (Hendrycks & Dietterich's ImageNet-C code, as used
by Michaelis et al. and Kamann & Rother). The Cityscapes-C set is Kamann & Rother's 16 corruptions in four
groups (also used by SegFormer); ``all`` adds zoom_blur, elastic_transform and pixelate, which move content
relative to the labels.
"""

from __future__ import annotations

import hashlib

from repsep.errors import UserError

GROUPS: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "gaussian_blur"),
    "weather": ("snow", "frost", "fog", "spatter"),
    "digital": ("brightness", "contrast", "saturate", "jpeg_compression"),
}
# Not in Cityscapes-C: geometric ones (labels no longer align) and pixelate.
EXTRA: dict[str, str] = {"zoom_blur": "blur", "elastic_transform": "digital", "pixelate": "digital"}

CITYSCAPES_C: tuple[str, ...] = tuple(name for names in GROUPS.values() for name in names)
ALL_CORRUPTIONS: tuple[str, ...] = CITYSCAPES_C + tuple(EXTRA)
SUITES: dict[str, tuple[str, ...]] = {
    "cityscapes-c": CITYSCAPES_C,
    "ade20k-c": CITYSCAPES_C,  # ADE20K-C is reported with the same 16 corruptions
    "all": ALL_CORRUPTIONS,
}
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
# Corruptions whose output depends on the seed (the others are deterministic functions of the image).
STOCHASTIC: frozenset[str] = frozenset({
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur", "snow", "frost",
    "fog", "spatter", "elastic_transform",
})


def group_of(name: str) -> str:
    """The group (noise, blur, weather, digital) a corruption belongs to."""
    for group, names in GROUPS.items():
        if name in names:
            return group
    if name in EXTRA:
        return EXTRA[name]
    raise UserError(f"unknown corruption {name!r}; choose from: {', '.join(ALL_CORRUPTIONS)}")


def resolve_corruptions(suite: str = "cityscapes-c", names: str | None = None) -> tuple[str, ...]:
    """Corruptions to run: the comma-separated ``names`` when given (validated), else the named ``suite``."""
    if names:
        chosen = tuple(n.strip() for n in names.split(",") if n.strip())
        for name in chosen:
            group_of(name)
        if len(set(chosen)) != len(chosen):
            raise UserError(f"--corruptions lists a corruption twice: {names}")
        return chosen
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}; choose from: {', '.join(SUITES)}")
    return SUITES[suite]


def parse_severities(text: str) -> tuple[int, ...]:
    """``"1-5"``, ``"3"`` or ``"1,3,5"`` -> sorted severities, each in 1..5."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
    except ValueError:
        raise UserError(f"--severities {text!r}: expected e.g. 1-5, 3 or 1,3,5") from None
    bad = sorted(s for s in out if s not in SEVERITIES)
    if bad or not out:
        raise UserError(f"--severities {text!r}: severities must be between 1 and 5")
    return tuple(sorted(out))


def check_severity(severity: int) -> int:
    if severity not in SEVERITIES:
        raise UserError(f"severity {severity} is out of range: severities are 1 to 5")
    return severity


def image_seed(image_id: str, corruption: str, severity: int, base_seed: int = 0) -> int:
    """The seed of one corrupted image: a uint32 hash of (base seed, image id, corruption, severity).

    It depends on nothing else (not on worker count, order or rank), so the pixels of a cell are the same
    wherever and whenever they are computed.
    """
    key = f"{base_seed}/{image_id}/{corruption}/{severity}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")
