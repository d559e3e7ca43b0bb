"""Transforms: mmseg resize/crop semantics, flip, photometric distortion, padding, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repsep.data.transforms import (
    EvalTransform,
    TrainTransform,
    keep_ratio_size,
    normalize,
    photometric_distortion,
    random_crop_box,
)


def _sample(h=16, w=32, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            "label": rng.integers(0, 5, (h, w)).astype(np.int64), "id": "x"}


def test_keep_ratio_size_known_answers():
    assert keep_ratio_size(1024, 2048, (512, 1024)) == (512, 1024)
    assert keep_ratio_size(100, 300, (512, 1024)) == (341, 1024)  # long edge binds: 1024 / 300
    assert keep_ratio_size(512, 683, (512, 2048)) == (512, 683)  # ADE: short edge binds
    assert keep_ratio_size(512, 683, (2048, 512)) == (512, 683)  # edge order does not matter


def test_normalize_known_values():
    image = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1).expand(3, 2, 2).to(torch.uint8)
    out = normalize(torch.full((2, 3, 1, 1), 255, dtype=torch.uint8))
    assert out.shape == (2, 3, 1, 1) and out.dtype == torch.float32
    assert out[0, :, 0, 0].tolist() == pytest.approx([(255 - 123.675) / 58.395, (255 - 116.28) / 57.12,
                                                      (255 - 103.53) / 57.375])
    assert normalize(image).abs().max() < 0.02


def test_flip_only_pipeline_is_exact():
    sample = _sample()
    t = TrainTransform(crop_size=(16, 32), ratio_range=(1.0, 1.0), scale=(16, 32), cat_max_ratio=1.0,
                       flip_prob=1.0, photometric=False, mean=(0, 0, 0), std=(1, 1, 1))
    out = t(sample, np.random.default_rng(0))
    assert torch.equal(out["image"], torch.from_numpy(sample["image"][:, ::-1].transpose(2, 0, 1).copy()).float())
    assert torch.equal(out["label"], torch.from_numpy(sample["label"][:, ::-1].copy()))


def test_small_images_are_padded_with_ignore():
    t = TrainTransform(crop_size=(24, 48), ratio_range=(1.0, 1.0), scale=(16, 32), photometric=False,
                       mean=(0, 0, 0), std=(1, 1, 1))
    out = t(_sample(), np.random.default_rng(1))
    assert out["image"].shape == (3, 24, 48) and out["label"].shape == (24, 48)
    assert (out["label"][16:] == 255).all() and (out["label"][:, 32:] == 255).all()
    assert (out["image"][:, 16:] == 0).all() and out["label"][:16, :32].max() < 5


def test_padding_comes_after_normalisation_so_padded_pixels_are_zero():
    """mmseg pads the normalised batch: a padded pixel is 0.0 (the mean colour), not (0 - mean) / std = -2.1."""
    sample = _sample()
    t = TrainTransform(crop_size=(24, 48), ratio_range=(1.0, 1.0), scale=(16, 32), cat_max_ratio=1.0,
                       flip_prob=0.0, photometric=False)  # ImageNet mean/std
    out = t(sample, np.random.default_rng(1))
    assert out["image"].shape == (3, 24, 48) and out["image"].dtype == torch.float32
    assert (out["image"][:, 16:] == 0).all() and (out["image"][:, :, 32:] == 0).all()
    expected = normalize(torch.from_numpy(sample["image"].transpose(2, 0, 1).copy()))
    assert torch.equal(out["image"][:, :16, :32], expected)
    assert (out["label"][16:] == 255).all() and (out["label"][:, 32:] == 255).all()
    assert torch.equal(out["label"][:16, :32], torch.from_numpy(sample["label"]))


def test_train_transform_is_deterministic_per_seed_and_random_across_seeds():
    t = TrainTransform(crop_size=(8, 16), scale=(16, 32))
    a, b, c = (t(_sample(), np.random.default_rng(s)) for s in (5, 5, 6))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])


def test_random_resize_range():
    t = TrainTransform(crop_size=(1000, 1000), ratio_range=(0.5, 2.0), scale=(16, 32), photometric=False)
    for seed in range(5):
        out = t(_sample(), np.random.default_rng(seed))
        h = int((out["label"][:, 0] != 255).sum())
        w = int((out["label"][0] != 255).sum())
        assert 8 <= h <= 32 and w == pytest.approx(2 * h, abs=1)


def test_cat_max_ratio_gives_up_after_ten_redraws_like_mmseg():
    label = np.zeros((20, 20), np.int64)  # one class: no crop can pass, so the 11th box is used
    box = random_crop_box(label, (10, 10), np.random.default_rng(3), cat_max_ratio=0.75)
    rng = np.random.default_rng(3)
    draws = [(int(rng.integers(11)), int(rng.integers(11))) for _ in range(11)]
    assert (box[0], box[2]) == draws[-1] and box[1] - box[0] == 10


def test_cat_max_ratio_accepts_a_balanced_crop_at_once():
    label = np.zeros((20, 20), np.int64)
    label[:, ::2] = 1  # every crop is 50/50
    rng = np.random.default_rng(3)
    box = random_crop_box(label, (10, 10), rng, cat_max_ratio=0.75)
    first = np.random.default_rng(3)
    assert (box[0], box[2]) == (int(first.integers(11)), int(first.integers(11)))


def test_photometric_distortion_keeps_grey_grey():
    grey = np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(4, axis=0)
    for seed in range(6):
        out = photometric_distortion(grey, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.shape == grey.shape
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()  # S = 0: hue/sat no-op


def test_photometric_distortion_changes_colour_images():
    image = _sample()["image"]
    changed = [not np.array_equal(photometric_distortion(image, np.random.default_rng(s)), image) for s in range(8)]
    assert sum(changed) >= 6


def test_eval_transform_resizes_image_only():
    sample = _sample(16, 32)
    out = EvalTransform(scale=(32, 64))(sample)
    assert out["image"].shape == (3, 32, 64) and torch.equal(out["label"], torch.from_numpy(sample["label"]))
    assert EvalTransform()(sample)["image"].shape == (3, 16, 32)
