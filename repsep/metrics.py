"""Semantic segmentation metrics: confusion matrix, IoU/accuracy (mmsegmentation convention), an evaluator.

Convention (mmseg ``IoUMetric``, equal to the official Cityscapes class IoU in trainId space): pixels whose ground
truth is ``ignore_index`` never count; the confusion matrix is summed over the whole dataset before dividing.
Per class, ``IoU = TP / (TP + FP + FN)`` and ``Acc = TP / (TP + FN)``. A class absent from both ground truth and
prediction has IoU NaN and is skipped by the means; a class predicted but absent from the ground truth has IoU 0
and counts (its Acc is NaN). ``mIoU``/``mAcc`` are NaN-means over classes; ``aAcc = sum(TP) / #valid pixels``.
All scores are percentages (0-100).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def _bincount_confusion(pred: torch.Tensor, label: torch.Tensor, num_classes: int, ignore_index: int,
                        groups: int = 1) -> torch.Tensor:
    """[groups, C, C] confusion matrices of ``pred``/``label`` shaped [groups, ...] (rows GT, cols prediction)."""
    pred, label = pred.reshape(groups, -1).long(), label.reshape(groups, -1).long()
    keep = label != ignore_index
    lab, prd = label[keep], pred[keep]
    if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= num_classes):
        raise ValueError(f"label values outside 0..{num_classes - 1} (and != ignore {ignore_index})")
    if prd.numel() and (int(prd.min()) < 0 or int(prd.max()) >= num_classes):
        raise ValueError(f"predicted values outside 0..{num_classes - 1}")
    group = torch.arange(groups, device=pred.device).unsqueeze(1).expand_as(label)[keep]
    idx = (group * num_classes + lab) * num_classes + prd
    counts = torch.bincount(idx, minlength=groups * num_classes * num_classes)
    return counts.view(groups, num_classes, num_classes)


def confusion_matrix(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """int64 [C, C] matrix (rows = ground truth, cols = prediction) of ``pred``/``label`` of any equal shape.

    Pixels labelled ``ignore_index`` are dropped; other labels and all predictions must lie in ``0..C-1``.
    Runs on the tensors' device.
    """
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(label.shape)}")
    return _bincount_confusion(pred, label, num_classes, ignore_index)[0]


def areas_from_confusion(conf: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(intersect, union, pred_area, label_area), each [..., C], from confusion matrices [..., C, C]."""
    intersect = conf.diagonal(dim1=-2, dim2=-1)
    pred_area, label_area = conf.sum(-2), conf.sum(-1)
    return intersect, pred_area + label_area - intersect, pred_area, label_area


def per_image_areas(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                    ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """mmseg ``intersect_and_union`` of one image: (intersect, union, pred_area, label_area), each int64 [C].

    ``pred_area`` counts predictions on non-ignored pixels only.
    """
    return areas_from_confusion(confusion_matrix(pred, label, num_classes, ignore_index))


def segmentation_metrics(conf: torch.Tensor) -> dict[str, Any]:
    """Scores from a dataset-accumulated confusion matrix [C, C] (rows GT, cols prediction), in percent.

    Returns ``mIoU``, ``aAcc``, ``mAcc`` (floats) and ``IoU``, ``Acc`` (lists of C floats, NaN where the class is
    absent: IoU when it is in neither ground truth nor prediction, Acc when it is not in the ground truth).
    """
    conf = conf.detach().to("cpu", torch.float64)
    intersect, union, _, label_area = areas_from_confusion(conf)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = (intersect / union).numpy() * 100
        acc = (intersect / label_area).numpy() * 100
        total = float(label_area.sum())
        a_acc = float(intersect.sum()) / total * 100 if total else float("nan")
    return {"mIoU": _nanmean(iou), "mAcc": _nanmean(acc), "aAcc": a_acc, "IoU": iou.tolist(), "Acc": acc.tolist()}


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


class SegEvaluator:
    """Accumulates a confusion matrix and per-image areas over a dataset (detectron2 ``DatasetEvaluator`` style).

    Call :meth:`reset`, then :meth:`process` per batch, :meth:`all_reduce` under ``torch.distributed`` (every
    rank), then :meth:`evaluate` (and :meth:`per_image` for the per-image areas).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, class_names: Sequence[str] | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {num_classes} classes")
        self.reset()

    def reset(self) -> None:
        self.conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        self._ids: list[str] = []
        self._areas: list[np.ndarray] = []  # each [4, C]: intersect, union, pred_area, label_area

    def process(self, pred: torch.Tensor, label: torch.Tensor, ids: Sequence[str]) -> None:
        """Add a batch: ``pred`` and ``label`` int [B, H, W] (or one image [H, W]) on any device, ``ids`` B names."""
        if pred.dim() == 2:
            pred, label = pred.unsqueeze(0), label.unsqueeze(0)
        if pred.shape != label.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(label.shape)}")
        if len(ids) != pred.shape[0]:
            raise ValueError(f"{len(ids)} ids for a batch of {pred.shape[0]}")
        conf = _bincount_confusion(pred, label, self.num_classes, self.ignore_index, groups=pred.shape[0]).cpu()
        self.conf += conf.sum(0)
        self._areas.extend(torch.stack(areas_from_confusion(conf), dim=1).numpy())
        self._ids.extend(ids)

    def add_results(self, conf: torch.Tensor | np.ndarray, ids: Sequence[str], areas: np.ndarray) -> None:
        """Add results computed earlier (a resumed evaluation): a summed confusion int64 ``[C, C]`` and, per image,
        ``ids`` [N] with ``areas`` int64 ``[N, 4, C]`` (intersect, union, pred_area, label_area). Adding every
        part of a dataset this way gives exactly the state of processing it in one go."""
        conf = torch.as_tensor(np.asarray(conf), dtype=torch.int64)
        areas = np.asarray(areas, dtype=np.int64)
        k = self.num_classes
        if conf.shape != (k, k) or areas.shape != (len(ids), 4, k):
            raise ValueError(f"results of shape {tuple(conf.shape)} / {areas.shape} do not fit {k} classes and "
                             f"{len(ids)} images")
        self.conf += conf
        self._areas.extend(areas)
        self._ids.extend(str(i) for i in ids)

    def results(self) -> tuple[torch.Tensor, list[str], np.ndarray]:
        """(confusion int64 ``[C, C]``, ids in processing order, areas int64 ``[N, 4, C]``): what
        :meth:`add_results` takes back."""
        areas = (np.stack(self._areas) if self._areas else np.zeros((0, 4, self.num_classes))).astype(np.int64)
        return self.conf.clone(), list(self._ids), areas

    def all_reduce(self) -> None:
        """Sum the confusion matrix and gather the per-image areas of every rank (no-op when not distributed)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        conf = self.conf.to(device)
        dist.all_reduce(conf)
        self.conf = conf.cpu()
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (self._ids, self._areas))
        self._ids = [i for ids, _ in gathered for i in ids]
        self._areas = [a for _, areas in gathered for a in areas]

    def per_image(self) -> dict[str, np.ndarray]:
        """``ids`` [N] and ``intersect``, ``union``, ``pred_area``, ``label_area`` int64 [N, C], sorted by id."""
        order = sorted(range(len(self._ids)), key=self._ids.__getitem__)
        areas = (np.stack([self._areas[i] for i in order]) if order
                 else np.zeros((0, 4, self.num_classes), dtype=np.int64))
        out = {"ids": np.array([self._ids[i] for i in order], dtype=str)}
        for k, name in enumerate(("intersect", "union", "pred_area", "label_area")):
            out[name] = np.ascontiguousarray(areas[:, k]).astype(np.int64)
        return out

    def evaluate(self) -> dict[str, Any]:
        """``mIoU``, ``aAcc``, ``mAcc``, ``IoU``/``Acc`` lists, ``per_class`` {name: {IoU, Acc}}, ``num_images``."""
        scores = segmentation_metrics(self.conf)
        scores["per_class"] = {name: {"IoU": iou, "Acc": acc}
                               for name, iou, acc in zip(self.class_names, scores["IoU"], scores["Acc"], strict=True)}
        scores["num_images"] = len(self._ids)
        return scores
