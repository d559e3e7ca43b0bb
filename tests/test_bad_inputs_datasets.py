"""Bad inputs of the issue-20 readers, through ``data check`` (layout detected) and ``data convert``: one stderr
line ``error: ...`` naming the file, exit code 2, nothing written."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from cli_helpers import run_cli
from PIL import Image

from repsep.data import open_dataset
from repsep.data.fixtures import write_fixture

# layout -> (spec kind, stem of val image 0, fragment of the "values outside the table" message)
LAYOUTS = {
    "acdc": ("acdc", "GOPR0475_frame_000000", "are not Cityscapes trainIds (0..18, 255 = ignore)"),
    "darkzurich": ("darkzurich", "GOPR0356_frame_000000", "are not Cityscapes trainIds (0..18, 255 = ignore)"),
    "foggy_cityscapes": ("foggy_cityscapes", "synthville_000000_000019", "are not Cityscapes trainIds"),
    "rain_cityscapes": ("rain_cityscapes", "synthville_000000_000019", "are not Cityscapes trainIds"),
    "pascal_context59": ("pascal_context59", "2008_500000",
                         "are not Pascal Context 59 labels (0 = background, 1..59, 255 = ignore)"),
    "coco_stuff164k": ("coco_stuff164k", "000000500000", "are not COCO-Stuff train ids (0..170, 255 = ignore)"),
    "coco_stuff10k": ("coco_stuff10k", "COCO_test2014_000000000000",
                      "are not COCO-Stuff 10k labels (0 = unlabeled, 1..171, 255 = ignore)"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad_layouts")
    return {layout: write_fixture(base / layout, layout, 1, 2, size=(32, 64)) for layout in LAYOUTS}


@pytest.fixture
def copy(pristine, tmp_path):
    def make(layout: str):
        root = shutil.copytree(pristine[layout], tmp_path / layout)
        ds = open_dataset(f"{LAYOUTS[layout][0]}:{root}", "val")
        return root, ds.images[0], ds.labels[0]
    return make


def _snapshot(root):
    return sorted((str(p), p.stat().st_size) for p in root.rglob("*"))


def _one_error(capsys, argv, fragment, root):
    before = _snapshot(root)
    capsys.readouterr()
    assert run_cli(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert _snapshot(root) == before


@pytest.mark.parametrize("layout", LAYOUTS)
def test_missing_label(copy, capsys, layout):
    root, image, label = copy(layout)
    stem = LAYOUTS[layout][1]
    for sibling in label.parent.iterdir():  # the trainIds and the labelIds / raw file
        if sibling.name.startswith((f"{stem}_", f"{stem}.")):
            sibling.unlink()
    _one_error(capsys, ["data", "check", str(root)], f"{image}: no label (expected {label.parent}/{stem}", root)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_label_of_another_size(copy, capsys, layout):
    root, image, label = copy(layout)
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(label)
    _one_error(capsys, ["data", "check", str(root)],
               f"{label}: label is 48x32 (WxH) but its image {image.name} is 64x32", root)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_label_values_outside_the_table(copy, capsys, layout):
    root, _, label = copy(layout)
    values = np.asarray(Image.open(label)).copy()
    values[0, :3] = 200
    Image.fromarray(values).save(label)
    _one_error(capsys, ["data", "check", str(root)], f"{label}: values [200] {LAYOUTS[layout][2]}", root)


@pytest.mark.parametrize("layout", ["acdc", "pascal_context59", "coco_stuff164k"])
def test_sixteen_bit_image_is_refused(copy, capsys, layout):
    root, image, _ = copy(layout)
    gray = np.asarray(Image.open(image).convert("L")).astype(np.uint16) * 256
    sixteen = image.with_suffix(".png") if image.suffix != ".png" else image
    Image.fromarray(gray).save(sixteen, format="PNG")
    if sixteen != image:
        sixteen.replace(image)  # a 16-bit PNG under the .jpg name
    _one_error(capsys, ["data", "check", str(root)], f"{image}: I;16 (16-bit/float) image, expected 8-bit RGB", root)


def test_pascal_context_split_list_problems(copy, capsys):
    root, image, _ = copy("pascal_context59")
    image.unlink()
    listing = root / "VOC2010" / "ImageSets" / "SegmentationContext" / "val.txt"
    _one_error(capsys, ["data", "check", str(root)], f"{listing}: lists 2008_500000 but {image} is missing", root)
    listing.unlink()
    _one_error(capsys, ["data", "check", str(root)], f"{listing}: split list not found (Pascal Context val)", root)


@pytest.mark.parametrize("argv, fragment", [
    (["data", "check", "{root}", "--split", "train"], "split 'train': Dark Zurich has labels for val only"),
    (["data", "check", "{root}", "--layout", "kitti"],
     "--layout kitti: choose cityscapes or one of ade20k, acdc[:fog|night|rain|snow|all]"),
])
def test_darkzurich_split_and_layout_option(copy, capsys, argv, fragment):
    root, _, _ = copy("darkzurich")
    _one_error(capsys, [a.format(root=root) for a in argv], fragment, root)


def test_two_layouts_in_one_root_name_the_choices(copy, capsys):
    root, _, _ = copy("foggy_cityscapes")
    shutil.copytree(root / "gtFine", root / "leftImg8bit")  # Foggy Cityscapes unzipped into the Cityscapes root
    _one_error(capsys, ["data", "check", str(root)], f"{root}: holds the folders of several layouts (cityscapes, "
               "foggy_cityscapes); name one with --layout cityscapes or --layout foggy_cityscapes", root)


def test_convert_bad_mat_and_bad_stuffthingmap(tmp_path, capsys):
    raw10k = write_fixture(tmp_path / "raw10k", "coco_stuff10k", 1, 1, raw=True)
    mat = raw10k / "annotations" / "COCO_train2014_000000000000.mat"
    mat.write_bytes(b"not a mat file")
    _one_error(capsys, ["data", "convert", str(raw10k), "--layout", "coco_stuff10k", "--out", str(tmp_path / "o")],
               f"{mat}: not a readable MATLAB file", raw10k)
    raw164k = write_fixture(tmp_path / "raw164k", "coco_stuff164k", 1, 1, raw=True)
    png = raw164k / "annotations" / "train2017" / "000000000000.png"
    Image.fromarray(np.full((32, 64), 11, np.uint8)).save(png)  # an unused COCO thing id
    _one_error(capsys, ["data", "convert", str(raw164k), "--layout", "coco_stuff164k"],
               f"{png}: values [11] are not COCO-Stuff stuffthingmap ids", raw164k)
    _one_error(capsys, ["data", "convert", str(raw164k), "--layout", "cityscapes"],
               "--layout cityscapes: data convert handles coco_stuff164k, coco_stuff10k", raw164k)


def test_convert_overwrite_replaces_only_its_own_unchanged_files(tmp_path, capsys):
    raw = write_fixture(tmp_path / "raw", "coco_stuff164k", 1, 1, raw=True)
    ours = raw / "annotations" / "val2017" / "000000500000_labelTrainIds.png"
    mmseg = raw / "annotations" / "train2017" / "000000000000_labelTrainIds.png"
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(mmseg)  # written by mmseg's converter, not by us
    foreign = mmseg.read_bytes()
    assert run_cli(["data", "convert", str(raw), "--layout", "coco_stuff164k"]) == 0
    assert mmseg.read_bytes() == foreign and ours.is_file()  # a file already there is kept
    _one_error(capsys, ["data", "convert", str(raw), "--layout", "coco_stuff164k", "--overwrite"],
               f"{mmseg}: exists and was not written by repsep-bench data convert", raw)

    mmseg.unlink()  # now every label file is ours: --overwrite rewrites them
    assert run_cli(["data", "convert", str(raw), "--layout", "coco_stuff164k"]) == 0
    converted = ours.read_bytes()
    ours.write_bytes(b"edited")
    assert run_cli(["data", "convert", str(raw), "--layout", "coco_stuff164k"]) == 0  # kept without --overwrite
    _one_error(capsys, ["data", "convert", str(raw), "--layout", "coco_stuff164k", "--overwrite"],
               f"{ours}: exists and was not written by repsep-bench data convert (no matching digest in", raw)
    ours.write_bytes(converted)
    capsys.readouterr()
    assert run_cli(["data", "convert", str(raw), "--layout", "coco_stuff164k", "--overwrite"]) == 0
    assert "wrote 2 label files" in capsys.readouterr().out and ours.read_bytes() == converted



@pytest.mark.parametrize("argv, fragment", [
    (["{root}", "--layout", "acdc:fig"],
     "dataset 'acdc:{root}:fig': acdc has no variant 'fig'; choose fog, night, rain, snow, all"),
    (["{root}", "--layout", "foggy_cityscapes:0.03"], "foggy_cityscapes has no variant '0.03'; choose 0.005, 0.01"),
    (["{root}/nope", "--layout", "darkzurich"], "{root}/nope: Dark Zurich root folder not found"),
    (["{root}", "--layout", "acdc"], "{root}: no rgb_anon/ folder (ACDC expects rgb_anon/ and gt/)"),
])
def test_bad_spec_variant_names_the_choices(tmp_path, capsys, argv, fragment):
    root = tmp_path / "data"
    root.mkdir()
    _one_error(capsys, ["data", "check", *(a.format(root=root) for a in argv)], fragment.format(root=root), root)


def test_eval_out_above_an_acdc_root_with_a_condition_is_refused(tiny_run, tmp_path, capsys):
    """The dataset root of ``acdc:PATH:night`` is PATH (not ``PATH:night``), so an --out that holds it is refused."""
    ws = tmp_path / "ws"
    root = write_fixture(ws / "acdc", "acdc", 0, 1, size=(64, 128))
    _one_error(capsys, ["eval", "--model", str(tiny_run / "model_final.pt"), "--data", f"acdc:{root}:night",
                        "--workers", "0", "--out", str(ws)],
               f"--out {ws}: is an input of this command ({root})", ws)


def test_acdc_all_with_a_condition_missing_names_it(tmp_path):
    """`acdc:PATH` (all) on a partial download is refused, not silently the conditions that happen to be there."""
    import shutil

    from repsep.data import open_dataset
    from repsep.data.fixtures import write_fixture
    from repsep.errors import UserError

    root = write_fixture(tmp_path / "acdc", "acdc", 1, 1)
    shutil.rmtree(root / "rgb_anon" / "snow")
    with pytest.raises(UserError, match=r"rgb_anon/snow/val: not found \(ACDC all needs fog, night, rain, snow"):
        open_dataset(f"acdc:{root}", "val")
    assert len(open_dataset(f"acdc:{root}:fog", "val")) == 1
