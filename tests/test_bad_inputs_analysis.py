"""Bad inputs of ``analyze`` (regime, windows, subset, device, output folder ownership): one ``error:`` line on
stderr, exit code 2, and nothing written or deleted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict[str, Path]:
    """A 2-image SynthCity val split (64x96) and a tiny baseline export whose recipe has no crop."""
    from repsep.data.labels import CITYSCAPES
    from repsep.data.synthcity import generate
    from repsep.engine.checkpoint import export_model
    from repsep.models import build_model, model_config

    root = tmp_path_factory.mktemp("bad_analysis")
    data = generate(root / "sc", num_train=1, num_val=2, size=(64, 96), seed=0, workers=1)
    torch.manual_seed(0)
    cfg = model_config("baseline_vit", size="tiny", num_classes=CITYSCAPES.num_classes, img_size=(64, 96))
    (root / "run").mkdir()
    export_model(root / "run" / "model_final.pt", build_model(cfg), cfg, CITYSCAPES, f"synthcity:{data}", {})
    return {"root": root, "data": data, "model": root / "run" / "model_final.pt", "out": root / "out"}


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _plant(out: Path) -> None:
    out.mkdir(exist_ok=True)
    (out / "notes.txt").write_text("my notes\n")


CASES = [
    ("regime", ["--regime", "bogus"], None, "--regime bogus: choose one of whole, slide"),
    ("num-images", ["--num-images", "0"], None, "--num-images: must be >= 1, got 0"),
    ("batch-size", ["--batch-size", "0"], None, "--batch-size: must be >= 1, got 0"),
    ("per-class", ["--per-class", "-3"], None, "--per-class: -3 is not in the range 0..2147483647"),
    ("hf-cutoff", ["--hf-cutoff", "2"], None, "--hf-cutoff: 2.0 is not in the range 0..1.4142"),
    ("device", ["--device", "nope"], None, "--device nope: not a device (cpu, cuda, cuda:1 ...)"),
    ("slide-no-crop", ["--regime", "slide"], None, "--regime slide: needs --crop and --stride"),
    ("crop-zero", ["--regime", "slide", "--crop", "0x0"], None,
     "--crop 0x0: each side must be between 16 and 16384 pixels"),
    ("crop-syntax", ["--crop", "big"], None, "--crop big: expected HEIGHTxWIDTH"),
    ("stride-over-crop", ["--regime", "slide", "--crop", "32x32", "--stride", "40x16"], None,
     "--stride 40x16: must be at least 1 and at most the crop 32x32"),
    ("out-is-model", ["--out", "{model}"], None, "is an input of this command"),
    ("out-holds-model", ["--out", "{run}"], None, "is an input of this command"),
    ("out-root", ["--out", "/"], None, "--out /: refusing to write into the file system root"),
    ("out-dataset", ["--out", "{data}"], None, "is a dataset root"),
    ("out-foreign", ["--out", "{out}", "--overwrite"], _plant,
     "--out {out}: holds notes.txt, which repsep-bench analyze did not write"),
]


@pytest.mark.parametrize(("name", "extra", "setup", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_analyze_input_is_one_line(ws, capsys, name, extra, setup, message):
    fill = {"model": str(ws["model"]), "run": str(ws["model"].parent), "data": str(ws["data"]), "out": str(ws["out"])}
    if setup is not None:
        setup(ws["out"])
    before = _snapshot(ws["root"])
    argv = ["analyze", "--model", str(ws["model"]), "--num-images", "1", "--layers", "decoder_input",
            "--tsne-layers", "decoder_input", "--per-class", "4", "--device", "cpu",
            *[a.format(**fill) for a in extra]]
    code = run_cli(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message.format(**fill) in lines[0]
    assert "Traceback" not in err
    assert _snapshot(ws["root"]) == before  # nothing written, nothing deleted (a planted file kept)
    default_out = ws["model"].parent / "analyze"
    assert not default_out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda(ws, capsys):
    code = run_cli(["analyze", "--model", str(ws["model"]), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "error: --device cuda: CUDA is not available on this machine"
