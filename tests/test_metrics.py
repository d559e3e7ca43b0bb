"""Confusion matrix and IoU with hand-computed answers (mmseg convention), evaluator accumulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repsep.metrics import SegEvaluator, confusion_matrix, per_image_areas, segmentation_metrics

# 2x3 image, 4 classes. GT: [[0, 0, 1], [1, 255, 2]]; prediction: [[0, 1, 1], [1, 3, 3]].
GT = torch.tensor([[0, 0, 1], [1, 255, 2]])
PRED = torch.tensor([[0, 1, 1], [1, 3, 3]])


def test_confusion_matrix_hand_computed():
    conf = confusion_matrix(PRED, GT, 4)
    expected = [[1, 1, 0, 0],   # GT 0: one right, one predicted as 1
                [0, 2, 0, 0],   # GT 1: both right
                [0, 0, 0, 1],   # GT 2: predicted as 3
                [0, 0, 0, 0]]   # GT 3: absent; the ignored pixel (pred 3) is dropped
    assert conf.dtype == torch.int64 and conf.tolist() == expected


def test_metrics_absent_and_predicted_but_absent_classes():
    m = segmentation_metrics(confusion_matrix(PRED, GT, 4))
    # IoU: c0 = 1/2, c1 = 2/3, c2 = 0/1 (in GT, never right), c3 = 0/1 (predicted, absent from GT: counts as 0)
    assert m["IoU"] == pytest.approx([50.0, 200 / 3, 0.0, 0.0])
    assert m["mIoU"] == pytest.approx((50 + 200 / 3) / 4)
    # Acc = TP / GT pixels; class 3 has no GT pixels -> NaN, skipped by mAcc
    assert m["Acc"][:3] == pytest.approx([50.0, 100.0, 0.0]) and math.isnan(m["Acc"][3])
    assert m["mAcc"] == pytest.approx(50.0)
    assert m["aAcc"] == pytest.approx(60.0)  # 3 of 5 valid pixels


def test_class_absent_from_gt_and_prediction_is_nan_and_skipped():
    m = segmentation_metrics(confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 3))
    assert math.isnan(m["IoU"][2]) and math.isnan(m["Acc"][2])
    assert m["mIoU"] == pytest.approx((50 + 50) / 2)


def test_all_ignore_image_contributes_nothing():
    label = torch.full((4, 4), 255)
    conf = confusion_matrix(torch.zeros(4, 4, dtype=torch.long), label, 3)
    assert conf.sum() == 0
    m = segmentation_metrics(conf)
    assert all(math.isnan(v) for v in (m["mIoU"], m["mAcc"], m["aAcc"]))
    evaluator = SegEvaluator(3)
    evaluator.process(torch.stack([PRED.clamp(max=2), torch.zeros(2, 3, dtype=torch.long)]),
                      torch.stack([GT, torch.full((2, 3), 255)]), ["a", "b"])
    alone = SegEvaluator(3)
    alone.process(PRED.clamp(max=2), GT, ["a"])
    assert evaluator.evaluate()["mIoU"] == alone.evaluate()["mIoU"]
    assert evaluator.per_image()["union"][1].tolist() == [0, 0, 0]


def test_per_image_areas_match_mmseg_intersect_and_union():
    intersect, union, pred_area, label_area = per_image_areas(PRED, GT, 4)
    assert intersect.tolist() == [1, 2, 0, 0]
    assert pred_area.tolist() == [1, 3, 0, 1]  # predictions on ignored pixels are not counted
    assert label_area.tolist() == [2, 2, 1, 0]
    assert union.tolist() == [2, 3, 1, 1]


def test_out_of_range_values_are_rejected():
    with pytest.raises(ValueError, match="label values"):
        confusion_matrix(torch.tensor([0]), torch.tensor([7]), 3)
    with pytest.raises(ValueError, match="predicted"):
        confusion_matrix(torch.tensor([5]), torch.tensor([0]), 3)


def test_accumulation_across_batches_equals_one_batch():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 5, (6, 8, 9), generator=gen)
    label = torch.randint(0, 6, (6, 8, 9), generator=gen)
    label[label == 5] = 255
    ids = [f"img{i}" for i in range(6)]
    one = SegEvaluator(5, class_names=list("abcde"))
    one.process(pred, label, ids)
    many = SegEvaluator(5, class_names=list("abcde"))
    for start in (4, 0, 2):  # any order
        many.process(pred[start:start + 2], label[start:start + 2], ids[start:start + 2])
    assert torch.equal(one.conf, many.conf)
    assert torch.equal(one.conf, confusion_matrix(pred, label, 5))
    r1, r2 = one.evaluate(), many.evaluate()
    assert r1["mIoU"] == r2["mIoU"] and r1["num_images"] == 6 and set(r1["per_class"]) == set("abcde")
    p1, p2 = one.per_image(), many.per_image()
    assert p1["ids"].tolist() == ids and p2["ids"].tolist() == ids
    for key in ("intersect", "union", "pred_area", "label_area"):
        assert np.array_equal(p1[key], p2[key]) and p1[key].dtype == np.int64
    assert np.array_equal(p1["intersect"].sum(0), one.conf.diagonal().numpy())
    one.reset()
    assert one.conf.sum() == 0 and one.evaluate()["num_images"] == 0


def _ddp_worker(rank: int, path: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    evaluator = SegEvaluator(3)
    evaluator.process(torch.tensor([[rank, 1]]), torch.tensor([[rank, 0]]), [f"r{rank}"])
    evaluator.all_reduce()
    assert evaluator.conf.tolist() == [[1, 2, 0], [0, 1, 0], [0, 0, 0]]  # rank 0: (0,0),(0,1); rank 1: (1,1),(0,1)
    assert evaluator.per_image()["ids"].tolist() == ["r0", "r1"]
    dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_sums_across_two_gloo_ranks(tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(str(tmp_path / "rendezvous"),), nprocs=2)


def test_add_results_of_parts_equals_processing_in_one_go():
    from repsep.metrics import SegEvaluator

    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 3, (4, 5, 6), generator=gen)
    label = torch.randint(0, 4, (4, 5, 6), generator=gen)
    label[label == 3] = 255
    ids = ["d", "a", "c", "b"]
    whole = SegEvaluator(3)
    whole.process(pred, label, ids)
    first, second = SegEvaluator(3), SegEvaluator(3)
    first.process(pred[:3], label[:3], ids[:3])
    second.process(pred[3:], label[3:], ids[3:])
    merged = SegEvaluator(3)
    for part in (second, first):  # any order
        merged.add_results(*part.results())
    assert torch.equal(merged.conf, whole.conf)
    assert merged.evaluate() == whole.evaluate()
    a, b = merged.per_image(), whole.per_image()
    assert all(np.array_equal(a[k], b[k]) for k in b)
    with pytest.raises(ValueError, match="do not fit 3 classes"):
        merged.add_results(torch.zeros(2, 2, dtype=torch.int64), [], np.zeros((0, 4, 2)))
