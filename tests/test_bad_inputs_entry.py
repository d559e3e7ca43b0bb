"""Bad inputs of `repsep-bench score` and `corruptions.evaluate_model`: one error line naming the file or option,
exit 2, checked before any scoring, nothing written."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from corruption_fixtures import IDS, make_cityscapes
from PIL import Image
from torch import nn

import corruptions
from repsep.data.labels import CITYSCAPES
from repsep.errors import UserError

CELLS = ("clean", "fog/1", "contrast/1")


def _rel(stem: str) -> str:
    return f"leftImg8bit/val/{stem.split('_')[0]}/{stem}_leftImg8bit.png"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A 3-image Cityscapes folder (64x96) and predictions (road everywhere) for every cell, in score's layout."""
    tmp = tmp_path_factory.mktemp("bad_entry")
    make_cityscapes(tmp / "cs")
    for cell in CELLS:
        for stem in IDS:
            path = tmp / "pred" / cell / _rel(stem)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((64, 96), np.uint8)).save(path)
    return tmp


@pytest.fixture
def pred(base, tmp_path):
    shutil.copytree(base / "pred", tmp_path / "pred")
    return tmp_path / "pred"


def _score(base, pred, out, capsys, *extra) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = run_cli(["score", "--pred", str(pred), "--data", f"cityscapes:{base / 'cs'}", "--corruptions",
                    "fog,contrast", "--severities", "1", "--out", str(out), *extra])
    return code, capsys.readouterr().err.splitlines()


def test_good_predictions_score(base, pred, tmp_path, capsys):
    code, err = _score(base, pred, tmp_path / "out", capsys)
    assert code == 0, err
    # road everywhere: road IoU 28/60 (28 road rows of 60 labelled), car 0 -> mIoU 23.33 in every cell
    from repsep.io import read_json

    r = read_json(tmp_path / "out" / "robustness.json")
    assert r["clean"] == pytest.approx(100 * 28 / 60 / 2) and r["mPC"] == pytest.approx(r["clean"])


def _png(path, array) -> None:
    Image.fromarray(array).save(path)


def _bad_missing(pred):
    (pred / "fog/1" / _rel(IDS[1])).unlink()
    return f"{pred / 'fog/1' / _rel(IDS[1])}: prediction not found"


def _bad_folder(pred):
    shutil.rmtree(pred / "contrast")
    return f"{pred / 'contrast/1'}: no such folder; the predictions for contrast severity 1 are missing"


def _bad_size(pred):
    _png(pred / "clean" / _rel(IDS[2]), np.zeros((32, 48), np.uint8))
    return f"{pred / 'clean' / _rel(IDS[2])}: prediction is 48x32 (WxH) but the label of {IDS[2]} is 96x64"


def _bad_rgb(pred):
    _png(pred / "fog/1" / _rel(IDS[0]), np.zeros((64, 96, 3), np.uint8))
    return f"{pred / 'fog/1' / _rel(IDS[0])}: prediction has mode RGB, expected an 8-bit single-channel PNG"


def _bad_value(pred):
    array = np.zeros((64, 96), np.uint8)
    array[10, 10] = 19
    _png(pred / "contrast/1" / _rel(IDS[2]), array)
    return f"{pred / 'contrast/1' / _rel(IDS[2])}: value 19 outside the class table (expected train ids 0..18"


def _bad_ignore_value(pred):
    _png(pred / "clean" / _rel(IDS[0]), np.full((64, 96), 255, np.uint8))
    return "value 255 outside the class table"


def _bad_empty(pred):
    (pred / "clean" / _rel(IDS[1])).write_bytes(b"")
    return f"{pred / 'clean' / _rel(IDS[1])}: empty prediction file (0 bytes)"


def _bad_16bit(pred):
    Image.fromarray(np.zeros((64, 96), np.uint16)).save(pred / "clean" / _rel(IDS[0]))
    return "expected an 8-bit single-channel PNG"


@pytest.mark.parametrize("make_bad", [_bad_missing, _bad_folder, _bad_size, _bad_rgb, _bad_value, _bad_ignore_value,
                                      _bad_empty, _bad_16bit])
def test_bad_prediction_is_one_line_and_writes_nothing(base, pred, tmp_path, capsys, make_bad):
    fragment = make_bad(pred)
    code, err = _score(base, pred, tmp_path / "out", capsys)
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "out").exists()


def test_label_ids_outside_the_evaluated_classes(base, pred, tmp_path, capsys):
    # label id 7 is road; 0 (unlabeled) is no evaluated class, 200 is no label id
    for stem in IDS:
        for cell in CELLS:
            _png(pred / cell / _rel(stem), np.full((64, 96), 7, np.uint8))
    _png(pred / "fog/1" / _rel(IDS[0]), np.array([[0, 200] * 48] * 64, np.uint8))
    code, err = _score(base, pred, tmp_path / "out", capsys, "--label-ids")
    assert code == 2 and len(err) == 1 and "values 0, 200 outside the class table (expected Cityscapes label ids of " \
        "the 19 evaluated classes)" in err[0], err
    assert not (tmp_path / "out").exists()


def test_pred_not_a_folder(base, tmp_path, capsys):
    file = tmp_path / "pred.png"
    file.write_bytes(b"x")
    code, err = _score(base, file, tmp_path / "out", capsys)
    assert code == 2 and err == [f"error: --pred {file}: not a folder (expected PRED/clean/<rel>.png and "
                                 "PRED/<corruption>/<severity>/<rel>.png (<rel>: the image's path in the dataset))"]
    code, err = _score(base, tmp_path / "nowhere", tmp_path / "out", capsys)
    assert code == 2 and len(err) == 1 and "nowhere: folder not found" in err[0]


def test_out_inside_the_predictions_is_refused(base, pred, capsys):
    code, err = _score(base, pred, pred, capsys)
    assert code == 2 and len(err) == 1 and str(pred) in err[0], err


# ---- corruptions.evaluate_model -----------------------------------------------------------------------------------

class Constant(nn.Module):
    def __init__(self, channels: int = 19) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x):
        return torch.zeros(x.shape[0], self.channels, x.shape[2], x.shape[3])


def _entry_error(base, tmp_path, model, classes, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        corruptions.evaluate_model(model, data=f"cityscapes:{base / 'cs'}", out=tmp_path / "out", name="mine",
                                   classes=classes, corruptions="fog", severities="1", num_images=1, **kwargs)
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()
    return str(e.value)


def test_entry_class_names_must_be_the_datasets(base, tmp_path):
    swapped = ("sidewalk", "road", *CITYSCAPES.classes[2:])
    assert _entry_error(base, tmp_path, Constant(), swapped) == (
        f"model mine: class 0 is 'sidewalk' but cityscapes:{base / 'cs'}'s class 0 is 'road' (the class table "
        "must be the dataset's, in train-id order)")
    assert _entry_error(base, tmp_path, Constant(), CITYSCAPES.classes[:5]).startswith(
        "model mine: 5 classes, but cityscapes:")


def test_entry_logits_of_the_wrong_shape(base, tmp_path):
    message = _entry_error(base, tmp_path, Constant(7), CITYSCAPES)
    assert message == "model mine: returned torch.float32 [1, 7, 64, 96] for a batch [1, 3, 64, 96], expected " \
                      "float logits [1, 19, h, w]"


def test_entry_bad_normalisation(base, tmp_path):
    assert _entry_error(base, tmp_path, Constant(), CITYSCAPES, std=(1, 0, 1)) == (
        "model mine: std must be 3 finite numbers (0-255 RGB), each > 0, got [1, 0, 1]")
