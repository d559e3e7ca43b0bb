"""Token labelling, model-independent sampling and streaming accumulation (analysis.features)."""

from __future__ import annotations

import pytest
import torch

from analysis.features import (
    ClassReservoir,
    FeatureStats,
    collect,
    image_features,
    layer_strides,
    location_priorities,
    patch_labels,
)


def test_patch_labels_purity_and_void_rules():
    # 4x4 map, 2x2 grid of 2x2 patches; 3 classes, 255 = void
    label = torch.tensor([
        [0, 0, 1, 1],
        [0, 0, 1, 2],
        [255, 255, 2, 2],
        [255, 1, 2, 1],
    ])
    # top-left: pure 0; top-right: 1 with 3/4; bottom-left: void 3/4; bottom-right: 2 with 3/4
    assert patch_labels(label, 2, num_classes=3, purity=0.75).tolist() == [0, 1, -1, 2]
    assert patch_labels(label, 2, num_classes=3, purity=0.8).tolist() == [0, -1, -1, -1]
    # one stride-4 token: class 0 has 4 pixels, class 1 has 5, class 2 has 4, void 3: majority 1 covers 5/16
    assert patch_labels(label, 4, num_classes=3, purity=0.75).tolist() == [-1]
    assert patch_labels(label, 4, num_classes=3, purity=0.3).tolist() == [1]
    assert patch_labels(label, 4, num_classes=3, purity=0.32).tolist() == [-1]
    # out-of-range values count as void, and so does the padding of a partial token (stride 8 over 6x6: 36/64)
    assert patch_labels(torch.full((2, 2), 7), 2, num_classes=3, purity=0.0).tolist() == [-1]
    assert patch_labels(torch.zeros(6, 6, dtype=torch.long), 8, num_classes=3, purity=0.56).tolist() == [0]
    assert patch_labels(torch.zeros(6, 6, dtype=torch.long), 8, num_classes=3, purity=0.57).tolist() == [-1]
    assert patch_labels(torch.zeros(4, 4, dtype=torch.long), 8, num_classes=3, purity=0.0).tolist() == [-1]


def test_location_priorities_depend_on_id_seed_and_grid_only():
    a = location_priorities("img_1", (4, 8), seed=0)
    assert torch.equal(a, location_priorities("img_1", (4, 8), seed=0))
    assert not torch.equal(a, location_priorities("img_2", (4, 8), seed=0))
    assert not torch.equal(a, location_priorities("img_1", (4, 8), seed=1))
    assert a.shape == (32,) and a.dtype == torch.float64


def test_reservoir_is_bottom_k_and_order_independent():
    g = torch.Generator().manual_seed(0)
    prio, labels = torch.rand(60, generator=g, dtype=torch.float64), torch.randint(0, 3, (60,), generator=g)
    locs, feats = torch.stack([torch.arange(60), torch.zeros(60, dtype=torch.long)], 1), torch.randn(60, 4)
    one = ClassReservoir(per_class=5)
    one.offer(prio, labels, locs, feats)
    chunks = ClassReservoir(per_class=5)
    for part in torch.randperm(60, generator=g).split(7):
        chunks.offer(prio[part], labels[part], locs[part], feats[part])
    assert torch.equal(one.locations, chunks.locations) and torch.equal(one.features, chunks.features)
    for c in range(3):
        expect = prio[labels == c].sort().values[:5]
        assert torch.equal(one.priority[one.labels == c], expect)


class _Const(torch.nn.Module):
    """A stand-in exposing ``forward_features``: two maps at strides 4 and 8 of a fixed random projection."""

    def __init__(self, seed: int, width: int) -> None:
        super().__init__()
        self.proj = torch.nn.Conv2d(3, width, 1)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(seed))

    def forward_features(self, images):
        f = self.proj(images)
        return {"fine": _pool(f, 4), "coarse": _pool(f, 8)}


def _pool(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.avg_pool2d(x, k)


def _batches():
    g = torch.Generator().manual_seed(0)
    for b in range(3):
        label = torch.zeros(2, 32, 64, dtype=torch.long)
        label[:, :, 32:] = 1
        label[:, 16:, :16] = 2
        label[:, :4] = 255
        yield {"image": torch.randn(2, 3, 32, 64, generator=g), "label": label, "id": [f"im{b}a", f"im{b}b"]}


def test_same_locations_for_two_models_and_summary():
    results = []
    for seed, width in ((0, 8), (1, 5)):
        stats = FeatureStats(num_classes=3, per_class=6, seed=0, cka_stride=16)
        results.append(collect(_Const(seed, width), _batches(), stats, progress=False))
    a, b = results
    assert list(a) == ["fine", "coarse"]
    for name in a:
        assert torch.equal(a[name].locations, b[name].locations)
        assert torch.equal(a[name].labels, b[name].labels)
        assert torch.equal(a[name].cka_locations, b[name].cka_locations)
        assert a[name].tokens.shape[1] == 8 and b[name].tokens.shape[1] == 5
        assert a[name].similarity["abs_cos"][2] == 6  # six images
    assert a["fine"].grid == (8, 16) and a["coarse"].grid == (4, 8)
    assert torch.bincount(a["fine"].labels).tolist() == [6, 6, 6]
    # the CKA grid (32x64 / 16 = 2x4) is shared by both layers
    assert torch.equal(a["fine"].cka_locations, a["coarse"].cka_locations)


def test_layer_selection_and_token_cap():
    stats = FeatureStats(num_classes=3, layers=["fine"], max_tokens=10)
    res = collect(_Const(0, 4), _batches(), stats, progress=False)
    assert list(res) == ["fine"]
    with pytest.raises(KeyError):
        FeatureStats(num_classes=3, layers=["nope"]).update({"fine": torch.zeros(1, 2, 2, 2)},
                                                           torch.zeros(1, 4, 4, dtype=torch.long), ["x"])


def test_collapsed_features_give_unit_similarity():
    stats = FeatureStats(num_classes=3)
    feats = {"x": torch.ones(2, 4, 4, 8)}
    stats.update(feats, torch.zeros(2, 16, 32, dtype=torch.long), ["a", "b"])
    sim = stats.result()["x"].similarity
    assert sim["abs_cos"][0] == pytest.approx(1.0) and sim["residual_ratio"][0] == pytest.approx(0.0)
    assert sim["hf_ratio"][0] == pytest.approx(0.0) and sim["diff_cos"][2] == 0  # one class: no diff pairs


class _Global(torch.nn.Module):
    """Stride-8 tokens of a 1x1 projection plus the mean of the whole input (a global-context stand-in for
    attention: a window sees only its own mean)."""

    size_divisor = 8

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Conv2d(3, 4, 1)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))

    def forward_features(self, images):
        f = self.proj(images)
        x = torch.nn.functional.pad(f, (0, -f.shape[-1] % 8, 0, -f.shape[-2] % 8))
        return {"tok": _pool(x, 8) + f.mean((2, 3), keepdim=True)}


def test_layer_strides_measured_on_an_unpadded_probe():
    assert layer_strides(_Global()) == {"tok": 8}
    assert layer_strides(_Const(0, 3)) == {"fine": 4, "coarse": 8}


def test_slide_equals_whole_for_an_image_of_one_crop_and_differs_otherwise():
    model = _Global().eval()
    images = torch.randn(2, 3, 32, 64, generator=torch.Generator().manual_seed(1))
    strides = {"tok": 8}
    whole, _ = image_features(model, images, strides, ["tok"])
    one, _ = image_features(model, images, strides, ["tok"], regime="slide", crop=(32, 64), stride=(21, 42))
    big, _ = image_features(model, images, strides, ["tok"], regime="slide", crop=(64, 128), stride=(32, 64))
    assert torch.equal(whole["tok"], one["tok"]) and torch.equal(whole["tok"], big["tok"])
    slide, cells = image_features(model, images, strides, ["tok"], regime="slide", crop=(32, 32), stride=(32, 20))
    assert slide["tok"].shape == whole["tok"].shape == (2, 4, 4, 8)
    assert not torch.allclose(slide["tok"], whole["tok"])
    # cell 0 comes from window [0, 32): the window's own forward pass, token 0
    window = model.forward_features(images[:, :, :, :32])["tok"]
    assert torch.equal(slide["tok"][..., 0], window[..., 0])
    assert cells["tok"][1].window.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


class _Stride16(torch.nn.Module):
    size_divisor = 16

    def forward_features(self, images):
        x = torch.nn.functional.pad(images, (0, -images.shape[-1] % 16, 0, -images.shape[-2] % 16))
        return {"tok": _pool(x, 16)}


def test_collect_labels_tokens_at_the_input_resolution():
    # 60x60 label, image resized to 40x40: input rows 0-15 class 0, 16-31 class 1, 32-39 class 2 (half a token)
    label = torch.zeros(1, 60, 60, dtype=torch.long)
    label[:, 24:48] = 1
    label[:, 48:] = 2
    batch = {"image": torch.randn(1, 3, 40, 40), "label": label, "id": ["a"]}
    res = collect(_Stride16(), [batch], FeatureStats(num_classes=3, purity=0.9, per_class=10), progress=False)
    assert res["tok"].grid == (3, 3) and res["tok"].stride == 16
    assert torch.bincount(res["tok"].labels, minlength=3).tolist() == [2, 2, 0]  # proportional cells: [3, 0, 0]


def test_boundary_and_interior_similarity_on_two_regions():
    # 64x64, class 0 left of column 36, class 1 right: token columns 0 | 1 2 | 3 = interior | boundary | interior
    label = torch.zeros(1, 64, 64, dtype=torch.long)
    label[:, :, 36:] = 1
    feats = torch.zeros(1, 3, 4, 4)
    feats[:, 0, :, 0] = 1  # interior class 0
    feats[:, 1, :, 3] = 1  # interior class 1: orthogonal to class 0
    feats[:, 2, :, 1:3] = 1  # boundary tokens of both classes: collapsed onto one direction
    stats = FeatureStats(num_classes=2, purity=0.75, per_class=50)
    stats.update({"x": feats}, label, ["img"])
    res = stats.result()["x"]
    sim = {m: v[0] for m, v in res.similarity.items()}
    assert sim["diff_cos_interior"] == pytest.approx(0.0) and sim["same_cos_interior"] == pytest.approx(1.0)
    assert sim["diff_cos_boundary"] == pytest.approx(1.0) and sim["same_cos_boundary"] == pytest.approx(1.0)
    assert sim["boundary_share"] == pytest.approx(0.5)
    tokens, labels, locations = res.regions["boundary"]
    assert torch.bincount(labels).tolist() == [4, 4] and sorted(locations[:, 1].tolist()) == sorted(
        [r * 4 + c for r in range(4) for c in (1, 2)])
    assert torch.bincount(res.regions["interior"][1]).tolist() == [4, 4]
    assert len(res.labels) == 16  # purity 0.75 keeps column 2 (12/16) in the "all" set
