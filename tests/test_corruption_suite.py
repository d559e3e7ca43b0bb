"""Corruption names, suites, severities and per-image seeds."""

from __future__ import annotations

import pytest

from corruptions.suite import (
    ALL_CORRUPTIONS,
    CITYSCAPES_C,
    GROUPS,
    STOCHASTIC,
    SUITES,
    group_of,
    image_seed,
    parse_severities,
    resolve_corruptions,
)
from repsep.errors import UserError


def test_cityscapes_c_is_kamann_16_in_four_groups():
    assert len(CITYSCAPES_C) == 16 and len(set(CITYSCAPES_C)) == 16
    assert {g: len(v) for g, v in GROUPS.items()} == {"noise": 4, "blur": 4, "weather": 4, "digital": 4}
    assert not {"zoom_blur", "elastic_transform", "pixelate"} & set(CITYSCAPES_C)
    assert len(ALL_CORRUPTIONS) == 19 and SUITES["all"] == ALL_CORRUPTIONS
    assert STOCHASTIC.issubset(ALL_CORRUPTIONS)
    assert group_of("snow") == "weather" and group_of("pixelate") == "digital" and group_of("zoom_blur") == "blur"


@pytest.mark.parametrize(("text", "expected"), [("1-5", (1, 2, 3, 4, 5)), ("3", (3,)), ("5,1,3", (1, 3, 5)),
                                                ("2-3,5", (2, 3, 5))])
def test_parse_severities(text, expected):
    assert parse_severities(text) == expected


@pytest.mark.parametrize("text", ["0", "6", "1-6", "a", "", "3-1"])
def test_parse_severities_rejects(text):
    with pytest.raises(UserError, match="--severities"):
        parse_severities(text)


def test_resolve_corruptions():
    assert resolve_corruptions("cityscapes-c") == CITYSCAPES_C
    assert resolve_corruptions("all", "fog, snow") == ("fog", "snow")
    with pytest.raises(UserError, match="unknown corruption 'fgo'"):
        resolve_corruptions("cityscapes-c", "fog,fgo")
    with pytest.raises(UserError, match="twice"):
        resolve_corruptions("cityscapes-c", "fog,fog")
    with pytest.raises(UserError, match="unknown suite"):
        resolve_corruptions("imagenet-c")


def test_image_seed_is_pinned_and_depends_on_every_field():
    # Pinned: changing the derivation would silently change every published corrupted pixel.
    assert image_seed("frankfurt_000000_000294", "fog", 3, 0) == 2425779268
    seeds = {image_seed("a", "fog", 3), image_seed("b", "fog", 3), image_seed("a", "snow", 3),
             image_seed("a", "fog", 4), image_seed("a", "fog", 3, base_seed=1)}
    assert len(seeds) == 5
    assert all(0 <= s < 2**32 for s in seeds)
