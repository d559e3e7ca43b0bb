"""Issue 20 readers end to end on fixtures in each official layout: ACDC, Dark Zurich, Foggy / Rain Cityscapes,
Pascal Context 59, COCO-Stuff 164k / 10k (written by repsep.data.fixtures from SynthCity scenes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_cli
from PIL import Image

from repsep.data import open_dataset
from repsep.data.detect import detect_layouts
from repsep.data.fixtures import COCO_STUFF_OF, PASCAL_CONTEXT_OF, write_fixture
from repsep.data.labels import LABELID_TO_TRAINID
from repsep.data.synthcity import image_rng, render_scene

# layout -> (spec template, number of val images with 2 per split (ACDC: per condition), first val id, its stratum)
CASES = {
    "acdc": ("acdc:{}", 8, "fog_GOPR0475_frame_000000", "fog/GOPR0475"),
    "darkzurich": ("darkzurich:{}", 2, "GOPR0356_frame_000000", "GOPR0356"),
    "foggy_cityscapes": ("foggy_cityscapes:{}:0.01", 2, "synthville_000000_000019", "synthville"),
    "rain_cityscapes": ("rain_cityscapes:{}", 2,
                        "synthville_000000_000019_rain_alpha_0.01_beta_0.005_dropsize_0.01_pattern_1", "synthville"),
    "pascal_context59": ("pascal_context59:{}", 2, "2008_500000", "JPEGImages"),
    "coco_stuff164k": ("coco_stuff164k:{}", 2, "000000500000", "val2017"),
    "coco_stuff10k": ("coco_stuff10k:{}", 2, "COCO_test2014_000000000000", "test2014"),
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("layouts")
    return {layout: write_fixture(base / layout, layout, 2, 2, size=(32, 64)) for layout in CASES}


def _scene(split: str, index: int, salt: int = 0):
    """The SynthCity scene behind fixture image ``index`` (fixtures salt the seed per ACDC condition)."""
    return render_scene(image_rng(0 + 7919 * salt, split, index), (32, 64))


@pytest.mark.parametrize("layout", CASES)
def test_layout_opens_loads_and_fingerprints(roots, layout):
    template, n, first_id, stratum = CASES[layout]
    ds = open_dataset(template.format(roots[layout]), "val")
    assert (len(ds), ds.ids[0], ds.group_of(0)) == (n, first_id, stratum)
    sample = ds.load(0)
    assert sample["image"].shape == (32, 64, 3) and sample["image"].dtype == np.uint8
    assert sample["label"].shape == (32, 64) and sample["label"].dtype == np.int64
    assert len(ds.fingerprint()) == 16 and ds.fingerprint() == open_dataset(template.format(roots[layout]),
                                                                              "val").fingerprint()
    assert detect_layouts(roots[layout]) == [layout]


def test_labels_decode_to_the_scene_classes(roots):
    """Known answers: each reader gives back the SynthCity scene's classes in its own table's train ids."""
    _, label_ids = _scene("val", 0, salt=1)  # ACDC fog is condition 1
    acdc = open_dataset(f"acdc:{roots['acdc']}:fog", "val").load(0)["label"]
    assert np.array_equal(acdc, LABELID_TO_TRAINID[label_ids])
    _, label_ids = _scene("val", 0)
    pc = open_dataset(f"pascal_context59:{roots['pascal_context59']}", "val").load(0)["label"]
    want = PASCAL_CONTEXT_OF[label_ids].astype(np.int64) - 1
    assert np.array_equal(pc, np.where(want < 0, 255, want))  # reduce_zero_label: background -> ignore
    road = open_dataset(f"pascal_context59:{roots['pascal_context59']}", "val").class_table.classes.index("road")
    assert road == 40 and (pc[label_ids == 7] == road).all()
    for kind in ("coco_stuff164k", "coco_stuff10k"):
        coco = open_dataset(f"{kind}:{roots[kind]}", "val").load(0)["label"]
        assert np.array_equal(coco, COCO_STUFF_OF[label_ids].astype(np.int64)), kind


def test_variants_are_separate_datasets(roots):
    fog = open_dataset(f"acdc:{roots['acdc']}:fog", "val")
    every = open_dataset(f"acdc:{roots['acdc']}", "val")
    assert len(fog) == 2 and {every.group_of(i).split("/")[0] for i in range(len(every))} == {"fog", "night",
                                                                                              "rain", "snow"}
    assert fog.fingerprint() != every.fingerprint()
    betas = [open_dataset(f"foggy_cityscapes:{roots['foggy_cityscapes']}:{b}", "val") for b in ("0.005", "0.02")]
    assert betas[0].ids == betas[1].ids and betas[0].fingerprint() != betas[1].fingerprint()
    assert open_dataset(f"foggy_cityscapes:{roots['foggy_cityscapes']}", "val").images[0].name.endswith(
        "_foggy_beta_0.02.png")


def test_164k_reads_official_stuffthingmaps_without_conversion(tmp_path):
    root = write_fixture(tmp_path / "raw", "coco_stuff164k", 1, 1, raw=True)
    ds = open_dataset(f"coco_stuff164k:{root}", "val")
    assert ds.labels[0].name == "000000500000.png"
    _, label_ids = _scene("val", 0)
    assert np.array_equal(ds.load(0)["label"], COCO_STUFF_OF[label_ids].astype(np.int64))


@pytest.mark.parametrize("layout", ["coco_stuff164k", "coco_stuff10k"])
def test_data_convert_writes_what_the_converted_fixture_holds(tmp_path, layout):
    raw = write_fixture(tmp_path / "raw", layout, 2, 2, raw=True)
    converted = write_fixture(tmp_path / "converted", layout, 2, 2)
    out = tmp_path / "out"
    assert run_cli(["data", "convert", str(raw), "--layout", layout, "--out", str(out)]) == 0
    for split in ("train", "val"):
        got, want = open_dataset(f"{layout}:{out}", split), open_dataset(f"{layout}:{converted}", split)
        assert got.ids == want.ids
        for a, b in zip(got.labels, want.labels, strict=True):
            assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), a
    assert run_cli(["data", "convert", str(raw), "--layout", layout, "--out", str(out)]) == 0  # rerun keeps files


def test_data_check_reports_layout_non_rgb_and_unlabelled(roots, tmp_path, capsys):
    root = write_fixture(tmp_path / "dz", "darkzurich", 0, 3)
    images = sorted((root / "rgb_anon" / "val" / "night" / "GOPR0356").iterdir())
    Image.open(images[0]).convert("L").save(images[0])
    label = root / "gt" / "val" / "night" / "GOPR0356" / "GOPR0356_frame_000001_gt_labelTrainIds.png"
    Image.fromarray(np.full((32, 64), 255, np.uint8)).save(label)
    (label.parent / "GOPR0356_frame_000001_gt_labelIds.png").unlink()
    capsys.readouterr()
    assert run_cli(["data", "check", str(root), "--json", str(tmp_path / "h.json")]) == 0
    out = capsys.readouterr().out
    assert "layout: darkzurich (detected)" in out
    assert "1 images are not RGB on disk (1 L; converted to RGB when read): GOPR0356_frame_000000" in out
    assert "1 images have no labelled pixel (every pixel ignore): GOPR0356_frame_000001" in out
    hist = json.loads((tmp_path / "h.json").read_text())
    assert hist["layout"] == "darkzurich" and hist["non_rgb_images"] == {"count": 1, "modes": {"L": 1},
                                                                         "ids": ["GOPR0356_frame_000000"]}
    assert hist["unlabelled_images"]["ids"] == ["GOPR0356_frame_000001"]


@pytest.mark.parametrize("layout", ["acdc", "darkzurich"])
def test_eval_of_a_tiny_trained_model_on_the_fixture(tiny_run, tmp_path, layout, capsys):
    root = write_fixture(tmp_path / layout, layout, 0, 1, size=(64, 128))
    spec = f"{layout}:{root}" + (":night" if layout == "acdc" else "")
    out = tmp_path / "eval"
    assert run_cli(["eval", "--model", str(tiny_run / "model_final.pt"), "--data", spec, "--workers", "0",
                    "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["dataset"] == spec and metrics["num_images"] == 1
    assert metrics["settings"]["dataset_fingerprint"] == open_dataset(spec, "val").fingerprint()
    assert 0.0 <= metrics["mIoU"] <= 100.0


def test_data_synth_layout_is_deterministic_and_kept_on_rerun(tmp_path, capsys):
    argv = ["data", "synth", "--layout", "acdc", "--num-train", "1", "--num-val", "1", "--size", "32x64"]
    assert run_cli([*argv, "--out", str(tmp_path / "a")]) == 0
    assert run_cli([*argv, "--out", str(tmp_path / "b")]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 4 * 2 * 3 + 1  # 4 conditions x 2 splits x (image, labelIds, labelTrainIds) + meta
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert run_cli([*argv, "--out", str(tmp_path / "a")]) == 0  # the same fixture: kept
    assert run_cli([*argv[:-1], "64x64", "--out", str(tmp_path / "a")]) == 2  # another one: refused
    capsys.readouterr()
    assert run_cli(["data", "check", str(tmp_path / "a"), "--split", "train"]) == 0
    assert "layout: acdc (detected)" in capsys.readouterr().out


def test_acdc_as_unzipped_packages_and_spec_root(roots, tmp_path):
    """ACDC's two zips unpack to rgb_anon_trainvaltest/rgb_anon and gt_trainval/gt; that root reads the same."""
    import shutil

    from repsep.data import spec_root

    root = tmp_path / "ACDC"
    shutil.copytree(roots["acdc"] / "rgb_anon", root / "rgb_anon_trainvaltest" / "rgb_anon")
    shutil.copytree(roots["acdc"] / "gt", root / "gt_trainval" / "gt")
    ds, flat = open_dataset(f"acdc:{root}:snow", "train"), open_dataset(f"acdc:{roots['acdc']}:snow", "train")
    assert ds.ids == flat.ids and ds.fingerprint() == flat.fingerprint() and detect_layouts(root) == ["acdc"]
    assert spec_root(f"acdc:{root}:snow") == str(root) and spec_root(f"acdc:{root}") == str(root)
    assert spec_root("foggy_cityscapes:/d/c:s:0.005") == "/d/c:s" and spec_root("synthcity") is None
