"""repsep.engine.inference: whole / slide / multi-scale + flip with tiny hand-checkable models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repsep.engine.inference import ShardSampler, predict, slide_logits
from repsep.errors import UserError


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


# ---- the eval command on a trained tiny model ------------------------------------------------------------------

def run_cli(*args: str) -> int:
    from repsep.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(args))
    return e.value.code


def test_colourise_and_error_map_known_pixels():
    from repsep.engine.eval_format import colourise, error_map

    pred = np.array([[0, 1], [1, 0]])
    label = np.array([[0, 0], [255, 1]])
    rgb = colourise(pred, ((10, 20, 30), (40, 50, 60)))
    assert rgb[0, 0].tolist() == [10, 20, 30] and rgb[0, 1].tolist() == [40, 50, 60]
    err = error_map(pred, label)
    assert err[0, 0].tolist() == [96, 96, 96]  # correct
    assert err[0, 1].tolist() == [255, 0, 0] and err[1, 1].tolist() == [255, 0, 0]  # wrong
    assert err[1, 0].tolist() == [0, 0, 0]  # ignored


def test_eval_command_writes_every_output(tiny_run, tmp_path, capsys):
    out, preds = tmp_path / "ev", tmp_path / "pred"
    assert run_cli("eval", "--model", str(tiny_run / "model_final.pt"), "--out", str(out), "--workers", "0",
                   "--mode", "slide", "--crop", "64x64", "--stride", "32x64", "--save-pred", str(preds)) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"mIoU", "aAcc", "mAcc", "per_class", "model", "dataset", "mode", "scales", "flip",
            "num_images"} <= set(metrics)
    assert (metrics["mode"], metrics["crop"], metrics["stride"], metrics["num_images"]) == ("slide", [64, 64],
                                                                                            [32, 64], 8)
    assert f"**mIoU {metrics['mIoU']:.2f}**" in printed
    assert (out / "metrics.md").read_text() in printed
    rows = (out / "per_class.csv").read_text().splitlines()
    assert rows[0] == "class,IoU,Acc" and len(rows) == 20 and rows[1].startswith("road,")
    per_image = np.load(out / "per_image.npz")
    assert per_image["intersect"].shape == (8, 19) and list(per_image["ids"]) == sorted(per_image["ids"])
    # the per-image areas add up to the dataset-wide confusion: aAcc = sum(intersect) / sum(label_area)
    aacc = 100 * per_image["intersect"].sum() / per_image["label_area"].sum()
    assert aacc == pytest.approx(metrics["aAcc"])
    assert json.loads((out / "manifest.json").read_text())["kind"] == "eval"
    pngs = sorted(p.name for p in preds.glob("*.png"))
    assert len(pngs) == 16 and f"{per_image['ids'][0]}_error.png" in pngs


def test_eval_bad_inputs_exit_2_with_one_line(tiny_run, tmp_path, capsys):
    model = str(tiny_run / "model_final.pt")
    cases = [
        (["--model", str(tiny_run / "checkpoint_last.pt")], "not a repsep-bench model export"),
        (["--model", model, "--data", f"cityscapes:{tmp_path}"], str(tmp_path)),
        (["--model", model, "--mode", "slide", "--crop", "64"], "--crop 64: expected HEIGHTxWIDTH"),
        (["--model", model, "--scales", "1,x"], "--scales 1,x"),
        (["--model", str(tmp_path / "none.pt")], "file not found"),
    ]
    for args, match in cases:
        assert run_cli("eval", *args, "--out", str(tmp_path / "ev")) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and match in err and "\n" not in err, err
    assert not (tmp_path / "ev").exists()


def test_eval_refuses_a_dataset_with_other_classes(tiny_run, tmp_path):
    from repsep.data.synthcity import generate
    from repsep.engine.evaluate import evaluate_checkpoint

    ade = generate(tmp_path / "ade", 0, 1, size=(64, 64), layout="ade20k", workers=1)
    with pytest.raises(UserError, match="predicts 19 classes .* has 150"):
        evaluate_checkpoint(tiny_run / "model_final.pt", tmp_path / "ev", data=f"ade20k:{ade}", progress=False)
