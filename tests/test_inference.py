"""repsep.engine.inference: whole / slide / multi-scale + flip with tiny hand-checkable models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repsep.engine.inference import ShardSampler, predict, slide_logits


class CallCounter(nn.Module):
    """Returns, for the n-th call, a 1-channel map filled with n; records each window's top-left pixel value."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[float, tuple[int, int]]] = []

    def forward(self, x):
        self.calls.append((float(x[0, 0, 0, 0]), tuple(x.shape[-2:])))
        return torch.full((x.shape[0], 1, *x.shape[-2:]), float(len(self.calls) - 1))


def coords(h: int, w: int) -> torch.Tensor:
    """Image whose pixel (y, x) holds 100 * y + x in every channel."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return (100 * yy + xx).float().expand(1, 3, h, w).clone()


def test_slide_windows_follow_mmseg_grid():
    # h=10, crop 4, stride 3 -> rows (0,4) (3,7) (6,10); w=13, crop 6, stride 4 -> cols (0,6) (4,10) (7,13)
    model = CallCounter()
    slide_logits(model, coords(10, 13), crop=(4, 6), stride=(3, 4))
    starts = [(int(v) // 100, int(v) % 100) for v, _ in model.calls]
    assert starts == [(y, x) for y in (0, 3, 6) for x in (0, 4, 7)]
    assert {s for _, s in model.calls} == {(4, 6)}


def test_slide_averages_overlaps_by_count():
    out = slide_logits(CallCounter(), coords(10, 13), crop=(4, 6), stride=(3, 4))
    assert out.shape == (1, 1, 10, 13)
    assert out[0, 0, 0, 0] == 0  # window 0 only
    assert out[0, 0, 3, 5] == 2  # windows 0, 1, 3, 4 (row-major) -> mean 2
    assert out[0, 0, 9, 12] == 8  # last window only
    assert out[0, 0, 6, 7] == pytest.approx((4 + 5 + 7 + 8) / 4)


def test_slide_small_image_is_one_smaller_window():
    model = CallCounter()
    out = slide_logits(model, coords(3, 5), crop=(4, 6), stride=(3, 4))
    assert [s for _, s in model.calls] == [(3, 5)]
    assert torch.equal(out, torch.zeros(1, 1, 3, 5))


def test_whole_returns_model_output_and_slide_matches_for_pixelwise_model():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, 1).eval()
    x = torch.randn(2, 3, 16, 24)
    assert torch.equal(predict(model, x), model(x))
    torch.testing.assert_close(predict(model, x, mode="slide", crop=(8, 8), stride=(5, 6)), model(x))


def test_flip_averages_with_flipped_back_pass():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, 3, padding=1).eval()
    x = torch.randn(1, 3, 8, 12)
    with torch.no_grad():
        expected = (model(x) + model(x.flip(-1)).flip(-1)) / 2
    torch.testing.assert_close(predict(model, x, flip=True, average="logits"), expected)
    probs = (model(x).softmax(1) + model(x.flip(-1)).flip(-1).softmax(1)) / 2
    torch.testing.assert_close(predict(model, x, flip=True).exp(), probs.detach())


def test_multiscale_resizes_back_and_averages():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 2, 1).eval()
    x = torch.randn(1, 3, 8, 12)
    with torch.no_grad():
        half = F.interpolate(model(F.interpolate(x, size=(4, 6), mode="bilinear")), size=(8, 12), mode="bilinear")
        expected = (half + model(x)) / 2
    out = predict(model, x, scales=(0.5, 1.0), average="logits")
    assert out.shape == (1, 2, 8, 12)
    torch.testing.assert_close(out, expected)


def test_tta_of_constant_model_keeps_the_argmax():
    model = nn.Conv2d(3, 3, 1).eval()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([0.0, 2.0, 1.0]))
    out = predict(model, torch.randn(1, 3, 9, 10), scales=(0.75, 1.25), flip=True)
    torch.testing.assert_close(out, torch.log_softmax(model.bias, 0).view(1, 3, 1, 1).expand(1, 3, 9, 10))


@pytest.mark.parametrize("n, world", [(8, 2), (7, 3), (2, 4)])
def test_shard_sampler_partitions_indices(n, world):
    shards = [list(ShardSampler(n, r, world)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    assert shards[0] == list(range(0, n, world))
