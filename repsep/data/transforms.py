"""Training and evaluation transforms following mmsegmentation's Cityscapes/ADE20K pipelines, on RGB images.

Train: ``RandomResize(scale, ratio_range, keep_ratio=True)`` -> ``RandomCrop(crop_size, cat_max_ratio)`` ->
``RandomFlip`` -> ``PhotoMetricDistortion`` -> normalise -> pad to ``crop_size`` (image 0 *after* normalising,
i.e. the mean colour, label 255), as mmseg's ``SegDataPreProcessor`` pads the normalised batch and as this
project's inference pads (``pad_to_multiple`` on normalised input).
Eval: optional keep-ratio ``Resize(scale)`` of the image only (the label stays at its original size) -> normalise.
Every random draw comes from the ``rng`` argument. Sizes are ``(height, width)``; mean/std are in 0-255 RGB units.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from repsep.data.base import Sample

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
IGNORE_INDEX = 255


def normalize(image: torch.Tensor, mean: tuple[float, float, float] = IMAGENET_MEAN,
              std: tuple[float, float, float] = IMAGENET_STD) -> torch.Tensor:
    """uint8 (or 0-255 float) RGB tensor [..., 3, H, W] -> float32 ``(image - mean) / std``, same shape/device."""
    m = torch.tensor(mean, dtype=torch.float32, device=image.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=image.device).view(3, 1, 1)
    return (image.to(torch.float32) - m) / s


def keep_ratio_size(height: int, width: int, scale: tuple[int, int]) -> tuple[int, int]:
    """mmcv ``rescale_size``: the largest (h, w) with the same aspect that fits ``scale`` (long and short edge)."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(height, width), short_edge / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def resize(image: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """cv2 resize to (h, w): bilinear for images, nearest for label maps (int64 labels go through int32)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if image.dtype == np.int64:
        return cv2.resize(image.astype(np.int32), (w, h), interpolation=interp).astype(np.int64)
    return cv2.resize(image, (w, h), interpolation=interp)


def _convert(x: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    return np.clip(x.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(image: np.ndarray, rng: np.random.Generator, brightness_delta: int = 32,
                           contrast_range: tuple[float, float] = (0.5, 1.5),
                           saturation_range: tuple[float, float] = (0.5, 1.5), hue_delta: int = 18) -> np.ndarray:
    """mmseg ``PhotoMetricDistortion`` on an RGB uint8 HxWx3 image: each step applied with probability 0.5.

    Brightness (+U(-delta, delta)), contrast (xU(range)) before or after (coin flip) saturation (xU(range) on the
    HSV S channel) and hue (+randint(-delta, delta) on OpenCV's 0..179 H channel).
    """
    if rng.integers(2):
        image = _convert(image, beta=rng.uniform(-brightness_delta, brightness_delta))
    contrast_first = bool(rng.integers(2))
    if contrast_first and rng.integers(2):
        image = _convert(image, alpha=rng.uniform(*contrast_range))
    do_saturation, do_hue = bool(rng.integers(2)), bool(rng.integers(2))
    if do_saturation or do_hue:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        if do_saturation:
            hsv[..., 1] = _convert(hsv[..., 1], alpha=rng.uniform(*saturation_range))
        if do_hue:
            hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.integers(-hue_delta, hue_delta + 1))) % 180
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if not contrast_first and rng.integers(2):
        image = _convert(image, alpha=rng.uniform(*contrast_range))
    return image


def random_crop_box(label: np.ndarray, crop_size: tuple[int, int], rng: np.random.Generator,
                    cat_max_ratio: float = 1.0, num_classes: int = 256,
                    ignore_index: int = IGNORE_INDEX) -> tuple[int, int, int, int]:
    """mmseg ``RandomCrop``: a box (y0, y1, x0, x1); with ``cat_max_ratio < 1`` up to 10 redraws until no class
    (ignore excluded) covers ``cat_max_ratio`` or more of the crop and at least two classes are present."""
    def draw() -> tuple[int, int, int, int]:
        y0 = int(rng.integers(max(label.shape[0] - crop_size[0], 0) + 1))
        x0 = int(rng.integers(max(label.shape[1] - crop_size[1], 0) + 1))
        return y0, y0 + crop_size[0], x0, x0 + crop_size[1]

    box = draw()
    if cat_max_ratio < 1.0:
        for _ in range(10):
            crop = label[box[0]:box[1], box[2]:box[3]]
            cnt = np.bincount(crop[crop != ignore_index].ravel(), minlength=num_classes)
            cnt = cnt[cnt > 0]
            if len(cnt) > 1 and cnt.max() / cnt.sum() < cat_max_ratio:
                break
            box = draw()
    return box


def _to_output(image: np.ndarray, label: np.ndarray, sample_id: str, mean: tuple, std: tuple,
               pad_to: tuple[int, int] | None = None) -> Sample:
    """HxWx3 uint8 + HxW label -> normalised ``[3, H, W]`` float32 and label tensors; with ``pad_to`` (h, w) both
    are padded on the right/bottom after normalising: image 0.0 (the normalised mean), label 255 (ignore)."""
    tensor = normalize(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), mean, std)
    target = torch.from_numpy(np.ascontiguousarray(label))
    if pad_to is not None:
        pad_h, pad_w = max(pad_to[0] - tensor.shape[1], 0), max(pad_to[1] - tensor.shape[2], 0)
        if pad_h or pad_w:
            tensor = torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h), value=0.0)
            target = torch.nn.functional.pad(target, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
    return {"image": tensor, "label": target, "id": sample_id}


class TrainTransform:
    """Random resize (keep ratio, ``ratio_range`` x ``scale``), crop, flip, photometric distortion, normalise, pad.

    Args:
        crop_size: (h, w) of the output; smaller resized images are padded after normalising (image 0.0 = the
            normalised mean colour, label 255).
        ratio_range: the target scale is ``scale`` times U(ratio_range), as mmseg ``RandomResize``.
        scale: (H, W) base scale, e.g. (1024, 2048) for Cityscapes, (512, 2048) for ADE20K.
        cat_max_ratio: redraw crops dominated by one class (1.0 disables).
        flip_prob: probability of a horizontal flip.
        photometric: apply :func:`photometric_distortion`.
    """

    def __init__(self, crop_size: tuple[int, int] = (512, 1024), ratio_range: tuple[float, float] = (0.5, 2.0),
                 scale: tuple[int, int] = (1024, 2048), cat_max_ratio: float = 0.75, flip_prob: float = 0.5,
                 photometric: bool = True, mean: tuple[float, float, float] = IMAGENET_MEAN,
                 std: tuple[float, float, float] = IMAGENET_STD) -> None:
        self.crop_size = tuple(crop_size)
        self.ratio_range = tuple(ratio_range)
        self.scale = tuple(scale)
        self.cat_max_ratio = cat_max_ratio
        self.flip_prob = flip_prob
        self.photometric = photometric
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        image, label = sample["image"], sample["label"]
        ratio = rng.uniform(*self.ratio_range)
        target = (int(self.scale[0] * ratio), int(self.scale[1] * ratio))
        size = keep_ratio_size(image.shape[0], image.shape[1], target)
        image, label = resize(image, size), resize(label, size, nearest=True)
        y0, y1, x0, x1 = random_crop_box(label, self.crop_size, rng, self.cat_max_ratio)
        image, label = image[y0:y1, x0:x1], label[y0:y1, x0:x1]
        if rng.random() < self.flip_prob:
            image, label = image[:, ::-1], label[:, ::-1]
        if self.photometric:
            image = photometric_distortion(np.ascontiguousarray(image), rng)
        return _to_output(image, label, sample["id"], self.mean, self.std, pad_to=self.crop_size)


class EvalTransform:
    """Optional keep-ratio resize of the image to fit ``scale`` (h, w), then normalise; the label is untouched
    (metrics are computed at the original resolution after upsampling the logits)."""

    def __init__(self, scale: tuple[int, int] | None = None, mean: tuple[float, float, float] = IMAGENET_MEAN,
                 std: tuple[float, float, float] = IMAGENET_STD) -> None:
        self.scale = None if scale is None else tuple(scale)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        image = sample["image"]
        if self.scale is not None:
            image = resize(image, keep_ratio_size(image.shape[0], image.shape[1], self.scale))
        return _to_output(image, sample["label"], sample["id"], self.mean, self.std)
