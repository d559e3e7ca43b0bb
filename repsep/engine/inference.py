"""Inference: whole-image, sliding-window (mmseg ``slide_inference``) and multi-scale + flip test-time augmentation.

Images enter normalised (float ``[B, 3, H, W]``, as the eval transform makes them); logits leave at the input size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from repsep.engine import distributed as dist

MODES = ("whole", "slide")


def slide_logits(model: nn.Module, images: torch.Tensor, crop: tuple[int, int],
                 stride: tuple[int, int]) -> torch.Tensor:
    """Sliding-window logits with mmseg ``slide_inference`` semantics.

    Windows of ``crop`` (h, w) start every ``stride`` pixels; the last window of a row/column is shifted back to
    end at the border, and a window never exceeds the image (small images give one smaller window). Overlapping
    logits are summed and divided by the per-pixel window count.
    """
    (h_crop, w_crop), (h_stride, w_stride) = crop, stride
    b, _, h, w = images.shape
    h_grids = max(h - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w - w_crop + w_stride - 1, 0) // w_stride + 1
    total: torch.Tensor | None = None
    count = images.new_zeros((1, 1, h, w))
    for hi in range(h_grids):
        for wi in range(w_grids):
            y2, x2 = min(hi * h_stride + h_crop, h), min(wi * w_stride + w_crop, w)
            y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
            out = model(images[:, :, y1:y2, x1:x2])
            if total is None:
                total = images.new_zeros((b, out.shape[1], h, w), dtype=out.dtype)
            total[:, :, y1:y2, x1:x2] += out
            count[:, :, y1:y2, x1:x2] += 1
    return total / count


def _single(model: nn.Module, images: torch.Tensor, mode: str, crop: tuple[int, int] | None,
            stride: tuple[int, int] | None) -> torch.Tensor:
    if mode == "whole":
        return model(images)
    if mode == "slide":
        if crop is None or stride is None:
            raise ValueError("slide inference needs crop and stride")
        return slide_logits(model, images, crop, stride)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, mode: str = "whole", crop: tuple[int, int] | None = None,
            stride: tuple[int, int] | None = None, scales: Sequence[float] = (1.0,), flip: bool = False,
            average: str = "softmax", precision: str = "fp32") -> torch.Tensor:
    """Logits ``[B, K, H, W]`` for normalised ``images`` ``[B, 3, H, W]``; ``model`` must be in eval mode.

    Args:
        mode: ``whole`` (one forward pass) or ``slide`` (windows of ``crop`` every ``stride``, both (h, w)).
        scales: image resize factors (bilinear); each pass's logits are resized back to (H, W).
        flip: also run the horizontally flipped image and flip its logits back.
        average: how test-time-augmented passes are merged: ``softmax`` (mean probability, returned as its log
            so the result stays logit-like, mmseg 0.x ``aug_test``) or ``logits`` (mean logits).
            A single pass (one scale 1.0, no flip) returns the model's logits unchanged.
        precision: ``fp32``, ``bf16`` or ``fp16``: each forward pass under autocast, its logits cast back to fp32
            (:mod:`repsep.engine.precision`), so windows and passes are merged in fp32.
    """
    from repsep.engine.precision import with_precision

    model = with_precision(model, precision, images.device.type)
    if average not in ("softmax", "logits"):
        raise ValueError(f"average must be 'softmax' or 'logits', got {average!r}")
    h, w = images.shape[-2:]
    passes = [(s, f) for s in scales for f in ((False, True) if flip else (False,))]
    if passes == [(1.0, False)]:
        return _single(model, images, mode, crop, stride)
    total = None
    for scale, flipped in passes:
        x = images if scale == 1.0 else F.interpolate(
            images, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False)
        if flipped:
            x = x.flip(-1)
        out = _single(model, x, mode, crop, stride).float()
        if flipped:
            out = out.flip(-1)
        if out.shape[-2:] != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        out = out.softmax(1) if average == "softmax" else out
        total = out if total is None else total + out
    total = total / len(passes)
    return total.clamp_min(torch.finfo(total.dtype).tiny).log() if average == "softmax" else total


class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``world`` takes indices ``r, r + world, ...``: every index exactly once, no padding."""

    def __init__(self, length: int, rank: int = 0, world: int = 1):
        self.indices = range(rank, length, world)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _collate(batch: list[dict]) -> dict:
    return {"image": torch.stack([b["image"] for b in batch]), "label": torch.stack([b["label"] for b in batch]),
            "id": [b["id"] for b in batch]}


@torch.no_grad()
def evaluate_batch(model: nn.Module, images: torch.Tensor, label: torch.Tensor, ids: Sequence[str], evaluator, *,
                   mode: str = "whole", crop: tuple[int, int] | None = None, stride: tuple[int, int] | None = None,
                   scales: Sequence[float] = (1.0,), flip: bool = False, precision: str = "fp32") -> torch.Tensor:
    """:func:`predict` one batch and add it to ``evaluator``; returns the prediction int64 ``[B, h, w]``.

    ``images`` are normalised float ``[B, 3, H, W]``, ``label`` integer ``[B, h, w]`` (any integer dtype, 255 =
    ignore) on the model's device; logits are resized (bilinear) to the label size ``(h, w)`` when they differ.
    :func:`evaluate_dataset` and the ``corrupt`` sweep's device path call it with one image per batch.
    """
    logits = predict(model, images, mode=mode, crop=crop, stride=stride, scales=scales, flip=flip,
                     precision=precision)
    if logits.shape[-2:] != label.shape[-2:]:
        logits = F.interpolate(logits.float(), size=label.shape[-2:], mode="bilinear", align_corners=False)
    pred = logits.argmax(1)
    evaluator.process(pred, label, ids)
    return pred


@torch.no_grad()
def evaluate_dataset(model: nn.Module, dataset: Dataset, evaluator, *, mode: str = "whole",
                     crop: tuple[int, int] | None = None, stride: tuple[int, int] | None = None,
                     scales: Sequence[float] = (1.0,), flip: bool = False, device: torch.device | str = "cpu",
                     num_workers: int = 0, progress: bool | None = None, precision: str = "fp32",
                     on_prediction: Callable[[int, str, torch.Tensor, torch.Tensor], None] | None = None):
    """Run :func:`predict` over ``dataset`` (eval transform set), fill ``evaluator`` and all-reduce it across ranks.

    Rank ``r`` of ``W`` processes images ``r::W`` (one image per batch, so results do not depend on the number of
    processes); the evaluator is reset first. ``on_prediction(index, id, pred [H, W], label [H, W])`` is called
    per image (e.g. to save colourised predictions). ``precision``: see :func:`predict`. Logits are resized to the
    label size when they differ. Returns ``evaluator``; its ``evaluate()`` is the dataset-wide result on every rank.
    """
    from repsep.progress import progress_bar

    device = torch.device(device)
    was_training = model.training
    model.eval()
    evaluator.reset()
    sampler = ShardSampler(len(dataset), dist.rank(), dist.world_size())
    loader = DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=num_workers,
                        pin_memory=device.type == "cuda", collate_fn=_collate, generator=torch.Generator(),
                        persistent_workers=False)
    bar = progress_bar(zip(sampler, loader, strict=True), wanted=progress if dist.is_main() else False,
                       total=len(sampler), desc="eval", unit="img", leave=False)
    for index, batch in bar:
        images = batch["image"].to(device, non_blocking=True)
        label = batch["label"].to(device, non_blocking=True)
        pred = evaluate_batch(model, images, label, batch["id"], evaluator, mode=mode, crop=crop, stride=stride,
                              scales=scales, flip=flip, precision=precision)
        if on_prediction is not None:
            on_prediction(index, batch["id"][0], pred[0].cpu(), label[0].cpu())
    evaluator.all_reduce()
    model.train(was_training)
    return evaluator


def resolve_settings(train_config: dict, *, mode: str | None = None, crop: tuple[int, int] | None = None,
                     stride: tuple[int, int] | None = None, scales: Sequence[float] | None = None,
                     flip: bool | None = None, precision: str | None = None,
                     device: torch.device | str = "cpu") -> dict:
    """The inference settings of ``eval`` / ``corrupt`` / ``analyze``: each option the user left as None comes
    from the run's ``eval`` config, and a slide window with no crop anywhere defaults to the **training crop**
    (``data.crop``) with stride 2/3 of it (mmseg's 512 -> 341). Returns ``mode``, ``crop``, ``stride``,
    ``scales``, ``flip``, ``precision`` (ready for :func:`predict`; precision None: bf16 on a CUDA ``device``, else
    fp32, :func:`repsep.engine.precision.resolve_precision`) and ``scale`` (the eval resize, or None). Values are
    checked: a bad one is a UserError naming its option.
    """
    import math

    from repsep.engine.precision import resolve_precision
    from repsep.errors import UserError

    def pair(v):
        return None if v is None else (int(v[0]), int(v[1]))

    run_eval = train_config.get("eval") or {}
    train_crop = pair((train_config.get("data") or {}).get("crop"))
    mode = mode or run_eval.get("mode", "whole")
    if mode not in MODES:
        raise UserError(f"--mode {mode}: choose one of {', '.join(MODES)}")
    crop = crop or pair(run_eval.get("crop")) or (train_crop if mode == "slide" else None)
    stride = stride or pair(run_eval.get("stride")) or (
        (max(1, crop[0] * 2 // 3), max(1, crop[1] * 2 // 3)) if crop is not None else None)
    for option, value in (("--crop", crop), ("--stride", stride)):  # given values are checked in every mode
        if value is not None and min(value) < 1:
            raise UserError(f"{option} {value[0]}x{value[1]}: sizes must be at least 1 pixel")
    if mode == "slide":
        if crop is None or stride is None:
            raise UserError("--mode slide: needs --crop and --stride (the model's run config has none)")
        if min(crop) < 1:
            raise UserError(f"--crop {crop[0]}x{crop[1]}: sizes must be at least 1 pixel")
        if min(stride) < 1 or stride[0] > crop[0] or stride[1] > crop[1]:
            raise UserError(f"--stride {stride[0]}x{stride[1]}: must be at least 1 and at most the crop "
                            f"{crop[0]}x{crop[1]} (windows would skip pixels)")
    scales = tuple(float(s) for s in (scales or run_eval.get("scales") or (1.0,)))
    if not scales or any(not math.isfinite(s) or s < 0.0625 or s > 16 for s in scales):
        raise UserError(f"--scales {','.join(map(str, scales))}: factors must be finite, between 0.0625 and 16")
    flip = bool(run_eval.get("flip", False)) if flip is None else bool(flip)
    return {"mode": mode, "crop": crop if mode == "slide" else None, "stride": stride if mode == "slide" else None,
            "scales": scales, "flip": flip, "precision": resolve_precision(precision, device),
            "scale": pair(run_eval.get("scale"))}
