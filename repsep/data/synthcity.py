"""SynthCity: a procedural street-scene dataset in the Cityscapes (or ADE20K) layout, the suite's embedded default.

The scenes are drawn by ``synthcity_scene`` (canvas, background, knobs) and ``synthcity_objects`` (objects,
lighting, :func:`render_scene`); this module writes datasets of them. Every image draws from its own generator
seeded by ``(seed, split, index)``, so the output is byte-identical for the same arguments whatever the number of
worker processes.
"""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from repsep.data.labels import LABELID_TO_TRAINID
from repsep.data.synthcity_objects import render_scene
from repsep.data.synthcity_scene import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    FENCE,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SIGN,
    SKY,
    STATIC,
    TERRAIN,
    TRAIN,
    TRUCK,
    UNLABELED,
    VEGETATION,
    WALL,
    SceneKnobs,
)
from repsep.errors import UserError
from repsep.io import atomic_write_json, dumps_json, temp_sibling_dir

# the scene grammar's names, re-exported: datasets, fixtures and tests read them from here
__all__ = ["BICYCLE", "BUILDING", "BUS", "CAR", "FENCE", "LIGHT", "MOTORCYCLE", "PERSON", "POLE", "RIDER", "ROAD",
           "SIDEWALK", "SIGN", "SKY", "STATIC", "TERRAIN", "TRAIN", "TRUCK", "UNLABELED", "VEGETATION", "WALL",
           "SceneKnobs", "render_scene", "image_rng", "generate", "synth_meta", "check_counts", "LABELID_TO_ADE",
           "GENERATOR_VERSION", "META_FILE", "SPLITS", "LAYOUTS", "CITY"]

GENERATOR_VERSION = "1"
META_FILE = "synthcity_meta.json"
SPLITS = ("train", "val")
LAYOUTS = ("cityscapes", "ade20k")
CITY = "synthville"

# labelId -> ADE20K annotation value (0 = other, k = ADE class k - 1).
LABELID_TO_ADE = np.zeros(256, dtype=np.uint8)
for _cs, _ade in {ROAD: 7, SIDEWALK: 12, BUILDING: 2, WALL: 1, FENCE: 33, POLE: 94, LIGHT: 137, SIGN: 44,
                  VEGETATION: 5, TERRAIN: 10, SKY: 3, PERSON: 13, RIDER: 13, CAR: 21, TRUCK: 84, BUS: 81,
                  MOTORCYCLE: 117, BICYCLE: 128}.items():
    LABELID_TO_ADE[_cs] = _ade


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: depends only on (seed, split, index)."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _write_image(job: tuple) -> None:
    root, split, index, seed, size, layout, knobs = job
    cv2.setNumThreads(1)
    image, label_ids = render_scene(image_rng(seed, split, index), size, knobs)
    if layout == "cityscapes":
        stem = f"{CITY}_{index:06d}_000019"
        img_dir, gt_dir = root / "leftImg8bit" / split / CITY, root / "gtFine" / split / CITY
        (img_dir / f"{stem}_leftImg8bit.png").write_bytes(_png_bytes(image))
        (gt_dir / f"{stem}_gtFine_labelIds.png").write_bytes(_png_bytes(label_ids))
        (gt_dir / f"{stem}_gtFine_labelTrainIds.png").write_bytes(_png_bytes(LABELID_TO_TRAINID[label_ids]))
    else:
        folder = "training" if split == "train" else "validation"
        stem = f"ADE_{split}_{index + 1:08d}"
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=90)
        (root / "images" / folder / f"{stem}.jpg").write_bytes(buf.getvalue())
        (root / "annotations" / folder / f"{stem}.png").write_bytes(_png_bytes(LABELID_TO_ADE[label_ids]))


def synth_meta(num_train: int, num_val: int, size: tuple[int, int], seed: int, layout: str,
               knobs: SceneKnobs) -> dict:
    """The content of ``synthcity_meta.json``: everything that determines the output bytes."""
    return {"generator": "synthcity", "version": GENERATOR_VERSION, "seed": seed, "size": list(size),
            "num_train": num_train, "num_val": num_val, "layout": layout, "knobs": dataclasses.asdict(knobs)}


def check_counts(num_train: int, num_val: int, size: tuple[int, int]) -> None:
    """UserError naming the option unless there is at least one image, no negative count, and 32..8192-pixel sides."""
    if num_train < 0 or num_val < 0 or num_train + num_val == 0:
        raise UserError(f"--num-train {num_train} --num-val {num_val}: need at least one image, no negative count")
    if len(size) != 2 or min(size) < 32 or max(size) > 8192:
        raise UserError(f"--size {size[0]}x{size[1]}: each side must lie in 32..8192 pixels")


def generate(out: str | Path, num_train: int, num_val: int, size: tuple[int, int] = (256, 512), seed: int = 0,
             layout: str = "cityscapes", knobs: SceneKnobs | None = None, workers: int | None = None,
             progress: bool = False) -> Path:
    """Write a SynthCity dataset into ``out`` atomically (into a temporary sibling folder, then renamed).

    Args:
        out: the dataset root; must not exist (or be empty) unless it already holds exactly this dataset (then kept
            as is).
        num_train: number of training images; num_val: number of validation images.
        size: (H, W) in pixels, each at least 32.
        seed: the root seed; image i of split s draws from ``image_rng(seed, s, i)``.
        layout: ``cityscapes`` (PNG, labelIds + labelTrainIds) or ``ade20k`` (JPEG + annotations 0..150).
        knobs: difficulty knobs, :class:`SceneKnobs` defaults when None.
        workers: processes drawing images (default: up to 4, at most the CPU count); output does not depend on it.
        progress: show a tqdm bar (on a terminal).

    Returns:
        The dataset root.
    """
    out, knobs = Path(out), knobs or SceneKnobs()
    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout}: choose one of {', '.join(LAYOUTS)}")
    check_counts(num_train, num_val, size)
    size = (int(size[0]), int(size[1]))
    meta = synth_meta(num_train, num_val, size, seed, layout, knobs)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):  # an empty folder is replaced
        existing = out / META_FILE
        if existing.is_file() and existing.read_text(encoding="utf-8") == dumps_json(meta):
            return out
        raise UserError(f"{out}: already exists and is not this SynthCity dataset; choose another --out or remove it")
    tmp = temp_sibling_dir(out)
    try:
        for split in SPLITS:
            if layout == "cityscapes":
                (tmp / "leftImg8bit" / split / CITY).mkdir(parents=True)
                (tmp / "gtFine" / split / CITY).mkdir(parents=True)
            else:
                folder = "training" if split == "train" else "validation"
                (tmp / "images" / folder).mkdir(parents=True)
                (tmp / "annotations" / folder).mkdir(parents=True)
        jobs = [(tmp, split, i, seed, size, layout, knobs)
                for split, n in (("train", num_train), ("val", num_val)) for i in range(n)]
        _run_jobs(jobs, workers, progress)
        atomic_write_json(tmp / META_FILE, meta)
        try:
            os.rename(tmp, out)
        except OSError:
            if not (out / META_FILE).is_file():  # lost a race only if the winner wrote the same dataset
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _run_jobs(jobs: list[tuple], workers: int | None, progress: bool) -> None:
    from tqdm import tqdm

    workers = workers or min(4, os.cpu_count() or 1)
    bar = tqdm(total=len(jobs), desc="synthcity", unit="img", disable=None if progress else True)
    with bar:
        if workers <= 1:
            for job in jobs:
                _write_image(job)
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for _ in pool.map(_write_image, jobs, chunksize=4):
                bar.update()
