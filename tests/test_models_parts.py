"""Known answers for the model parts (discrepancy, losses, region gathering), model_info and the models CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from cli_helpers import run_cli
from torch import nn

from repsep.errors import UserError
from repsep.models import build_model, model_config
from repsep.models.losses import ohem_keep, pixel_cross_entropy
from repsep.models.profile import model_info, parse_image_size
from repsep.models.rsseg.dca import gather_regions, region_loss
from repsep.models.rsseg.pathway import LocalDiscrepancy
from repsep.models.rsseg.sasm import downsample_labels, separation_loss


def test_local_discrepancy_known_values():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 9.0
    d = LocalDiscrepancy(1)(x)
    assert d[0, 0, 1, 1] == 8.0  # 9 - mean of the 3x3 neighbourhood (9 / 9)
    assert d[0, 0, 0, 0] == -1.0  # corner: its replicate-padded window holds the 9 once -> 0 - 9 / 9
    const = torch.full((2, 3, 5, 7), 4.0)  # replicate padding: no border response
    assert LocalDiscrepancy(3)(const).abs().max() == 0
    y = torch.randn(2, 3, 6, 5)
    assert torch.allclose(LocalDiscrepancy(3, "laplacian")(y), LocalDiscrepancy(3)(y), atol=1e-6)
    assert sum(p.numel() for p in LocalDiscrepancy(3).parameters()) == 0
    assert sum(p.numel() for p in LocalDiscrepancy(3, "laplacian").parameters()) == 27


def test_pixel_cross_entropy_known_values():
    target = torch.tensor([[[0, 1], [255, 255]]])
    assert torch.isclose(pixel_cross_entropy(torch.zeros(1, 4, 2, 2), target), torch.tensor(math.log(4)))
    assert pixel_cross_entropy(torch.zeros(1, 4, 2, 2, requires_grad=True), torch.full((1, 2, 2), 255)) == 0
    # pixel 0: p(gt) = 0.9 (easy); pixel 1: p(gt) = 0.1 (hard); OHEM with threshold 0.7 keeps only the hard one
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.1, 0.9]])).reshape(1, 2, 1, 2)  # [B, K, H, W]
    target = torch.tensor([[[0, 0]]])
    assert torch.isclose(pixel_cross_entropy(logits, target), torch.tensor(-(math.log(0.9) + math.log(0.1)) / 2))
    hard = pixel_cross_entropy(logits, target, ohem=True, ohem_thresh=0.7, ohem_min_kept=1)
    assert torch.isclose(hard, torch.tensor(-math.log(0.1)))


def _two_class_logits(probs: list[list[float]]) -> torch.Tensor:
    """[B, 2, 1, W] logits whose softmax gives class 0 the probabilities ``probs`` [B][W]."""
    p = torch.tensor(probs, dtype=torch.float64)
    return torch.stack([p.log(), (1 - p).log()], dim=1).unsqueeze(2)


def test_ohem_follows_mmseg_ohem_pixel_sampler():
    """mmseg 1.x OHEMPixelSampler: min_kept is per image (x batch), the threshold is sorted_p[min(kept, n - 1)]."""
    logits = _two_class_logits([[0.1, 0.5, 0.8, 0.95], [0.2, 0.6, 0.9, 0.5]])
    target = torch.tensor([[[0, 0, 0, 0]], [[0, 0, 0, 255]]])  # 7 labelled; sorted p: .1 .2 .5 .6 .8 .9 .95
    def kept(thresh, min_kept):
        return sorted(round(float(p), 2) for p in logits.softmax(1)[:, 0][ohem_keep(logits, target, 255, thresh,
                                                                                      min_kept)])
    # min_kept 2 x batch 2 = 4 -> threshold sorted_p[4] = 0.8 > 0.3 -> p < 0.8 kept
    assert kept(0.3, 2) == [0.1, 0.2, 0.5, 0.6]
    # min_kept 1 x 2 = 2 -> sorted_p[2] = 0.5, but thresh 0.85 is larger -> p < 0.85
    assert kept(0.85, 1) == [0.1, 0.2, 0.5, 0.6, 0.8]
    # more than the labelled pixels: index n - 1 -> 0.95 (strict <, so the easiest one is dropped)
    assert kept(0.3, 100) == [0.1, 0.2, 0.5, 0.6, 0.8, 0.9]
    # the ignored pixel is never kept, whatever its probability
    assert not ohem_keep(logits, target, 255, 0.99, 100)[1, 0, 3]
    loss = pixel_cross_entropy(logits.float(), target, ohem=True, ohem_thresh=0.3, ohem_min_kept=2)
    assert torch.isclose(loss, torch.tensor(-sum(math.log(p) for p in (0.1, 0.2, 0.5, 0.6)) / 4))


def test_downsample_labels_takes_centre_pixels_of_the_padded_grid():
    target = torch.arange(100).reshape(1, 10, 10)
    labels = downsample_labels(target, (2, 2), 8, 255)
    assert labels.tolist() == [[[44, 255], [255, 255]]]  # (4, 4) of the image; the others fall in the padding


def test_separation_loss_known_values():
    # two classes, features exactly on orthogonal axes: pull 0, push relu(0 - 0.5) = 0
    feat = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 3.0]]).t().reshape(1, 2, 1, 4)
    labels = torch.tensor([[[0, 0, 1, 1]]])
    assert separation_loss(feat, labels, 2) == 0
    # both classes on the same axis: pull 0, push relu(1 - 0.5) = 0.5
    same = torch.tensor([[1.0, 0.0]] * 4).t().reshape(1, 2, 1, 4)
    assert torch.isclose(separation_loss(same, labels, 2), torch.tensor(0.5))
    assert separation_loss(feat, torch.full((1, 1, 4), 255), 2) == 0


def test_gather_regions_follows_the_coarse_prediction():
    feat = torch.randn(1, 3, 2, 2)
    coarse = torch.full((1, 2, 2, 2), -1e4)
    coarse[0, 0, 0, 1] = coarse[0, 1, 1, 0] = 1e4  # class 0 sits at pixel (0, 1), class 1 at (1, 0)
    regions = gather_regions(feat, coarse)
    assert torch.allclose(regions[0, 0], feat[0, :, 0, 1]) and torch.allclose(regions[0, 1], feat[0, :, 1, 0])


def test_region_loss_of_a_uniform_classifier_is_log_k_plus_1():
    classifier = nn.Linear(3, 5)  # K = 4 classes + "absent"
    nn.init.zeros_(classifier.weight)
    nn.init.zeros_(classifier.bias)
    target = torch.tensor([[[0, 1], [2, 255]]])
    loss = region_loss(classifier, torch.randn(1, 4, 3), torch.randn(1, 3, 1, 1), target, target[:, :1, :1], 4)
    assert torch.isclose(loss, torch.tensor(math.log(5)))


def test_parse_image_size():
    assert parse_image_size("512x1024") == (512, 1024) and parse_image_size("640") == (640, 640)
    with pytest.raises(UserError, match="--size"):
        parse_image_size("big")


def test_model_info_counts_params_and_flops():
    cfg = model_config("rsseg_vit", num_classes=5)
    info = model_info(cfg, (64, 96))
    model = build_model(cfg)
    params = info["params"]
    assert params["total"] == sum(p.numel() for p in model.parameters())
    assert params["backbone"] == sum(p.numel() for p in model.backbone.parameters())
    assert params["training_only"] == sum(p.numel() for p in model.region_classifier.parameters())
    assert params["inference"] == sum(p.numel() for p in model.deploy().parameters())  # deployed: no aux head
    assert params["extra"] == params["inference"] - params["backbone"]
    # ViT-tiny preset: 4 blocks, D = 96, N = 4 x 6 patches + 1 class token; 2 FLOPs per multiply-add:
    # multiply-adds per block 12 N D^2 (qkv 3, proj 1, mlp 8) + 2 N^2 D (attention); patch embedding 24 x 96 x 768
    n, d = 25, 96
    expected_macs = 4 * (12 * n * d * d + 2 * n * n * d) + 24 * d * 3 * 16 * 16
    assert info["gmacs"]["backbone"] * 1e9 == pytest.approx(expected_macs, rel=1e-12)
    assert info["gmacs"]["extra"] > 0 and "gflops" not in info  # one convention: GMACs only
    assert info["gmacs"]["total"] == pytest.approx(info["gmacs"]["backbone"] + info["gmacs"]["extra"])


def test_models_cli(tmp_path, capsys):
    out = tmp_path / "info.json"
    args = ["models", "info", "rsseg_vit", "--size", "64x96", "--set", "num_classes=5", "--json", str(out)]
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "extra (decoder)" in printed and "training only (aux, removed by deploy)" in printed
    header = next(line for line in printed.splitlines() if "params" in line)
    assert "params (M, deployed)" in header and "GMACs" in header and "GFLOPs" not in header
    info = json.loads(out.read_text())
    assert info["config"]["num_classes"] == 5 and info["image_size"] == [64, 96]
    assert run_cli(["models", "list", "--json", str(tmp_path / "list.json")]) == 0
    names = [row["name"] for row in json.loads((tmp_path / "list.json").read_text())["models"]]
    assert names == ["baseline_vit", "rsseg_vit", "baseline_pvt", "rsseg_pvt", "upernet_vit", "setr_naive", "setr_pup",
                     "setr_mla", "segmenter_linear", "segmenter_mask"]  # + the recognisable baselines (issue 17)
    capsys.readouterr()
    assert run_cli(["models", "info", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


# ---- DCA and padding (issue 18) ------------------------------------------------------------------------------

def test_gather_regions_ignores_padded_cells():
    """Regions pooled over the valid h' x w' cells only: neither the padding's content nor its extent matters."""
    from repsep.models.rsseg.dca import DCA

    torch.manual_seed(0)
    feat, coarse = torch.randn(2, 6, 3, 5), torch.randn(2, 4, 3, 5)
    expected = coarse.flatten(2).softmax(2) @ feat.flatten(2).transpose(1, 2)  # the unpadded regions
    for pad_h, pad_w, fill in [(1, 3, 0.0), (5, 0, 100.0), (2, 7, -3.0)]:
        pf = torch.full((2, 6, 3 + pad_h, 5 + pad_w), fill)
        pc = torch.full((2, 4, 3 + pad_h, 5 + pad_w), fill * 7)
        pf[..., :3, :5], pc[..., :3, :5] = feat, coarse
        regions = gather_regions(pf, pc, (3, 5))
        assert torch.allclose(regions, expected, atol=1e-5), (pad_h, pad_w, fill)
        dca = DCA(6, 4).eval()
        with torch.no_grad():
            assert torch.allclose(dca(pf, regions)[..., :3, :5], dca(feat, expected), atol=1e-5)
    zero_pad = torch.nn.functional.pad
    unmasked = gather_regions(zero_pad(feat, (0, 3, 0, 1)), zero_pad(coarse, (0, 3, 0, 1)))
    assert not torch.allclose(unmasked, expected, atol=1e-3)  # pooling the padding too would differ


def test_segmentor_dca_pools_only_the_image_cells():
    """Whole-image inference pads 56x120 to 64x128 (size divisor 16): DCA's regions come from the 7 x 15 image cells
    of the stride-8 grid, so they equal the regions gathered from the cropped features."""
    torch.manual_seed(0)
    model = build_model(model_config("rsseg_vit", num_classes=5)).eval()
    with torch.no_grad():
        r = model._run(torch.randn(1, 3, 56, 120))
    assert r["fused"].shape[-2:] == (8, 16)
    fused, aux = r["fused"][..., :7, :15], r["aux_logits"][..., :7, :15]
    assert torch.allclose(r["regions"], aux.flatten(2).softmax(2) @ fused.flatten(2).transpose(1, 2), atol=1e-5)
