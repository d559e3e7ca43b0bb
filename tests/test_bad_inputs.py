"""Every user-facing command against bad inputs: one stderr line naming the file and the problem, exit code 2,
no traceback, and no file created, changed or removed (bytes and mtimes of the whole work tree compared).

Each row is (command line, setup that creates the bad input, expected message fragment). Placeholders in braces
are paths of the per-test work tree (see :func:`_paths`); setups write the bad input into it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bad_input_setups import SETUPS
from corruption_fixtures import make_cityscapes

from repsep.cli import main

CITY_IMG = "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png"
CITY_LAB = "gtFine/val/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"
TINY = ("data.crop=[64, 96]", "data.scale=[64, 96]", "data.batch_size=2", "data.num_workers=0",
        "model.img_size=[64, 96]", "schedule.iters=2")
PROGRESS_BAR = re.compile(r"^[\w .-]*: *(\d+%\||\d+it \[)")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CAN_CHMOD = hasattr(os, "geteuid") and os.geteuid() != 0  # root writes into 0o555 folders anyway


# ---- the work tree ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Shared read-only inputs: a 3-image Cityscapes folder, a 2+2-image ADE20K folder, tiny 19- and 150-class model
    exports, a 2+1-image SynthCity folder, a training state file, and finished eval / corrupt output folders."""
    from repsep.data.labels import ADE20K, CITYSCAPES
    from repsep.data.synthcity import generate
    from repsep.engine.checkpoint import export_model, save_state
    from repsep.models import build_model, model_config

    root = tmp_path_factory.mktemp("bad_inputs_base")
    cs = make_cityscapes(root / "cs")
    generate(root / "ade", 2, 2, size=(32, 64), seed=0, layout="ade20k", workers=1)
    generate(root / "sc", 2, 1, size=(64, 96), seed=0, workers=1)
    torch.manual_seed(0)
    for name, table, spec in (("model.pt", CITYSCAPES, f"cityscapes:{cs}"), ("ade_model.pt", ADE20K, "ade20k:x")):
        cfg = model_config("baseline_vit", size="tiny", num_classes=table.num_classes, img_size=(64, 96))
        export_model(root / name, build_model(cfg), cfg, table, spec, {})
    save_state(root / "state.pt", {"iter": 1, "w": torch.zeros(3)})
    data = ["--data", f"cityscapes:{cs}"]
    for argv in (["eval", "--model", str(root / "model.pt"), *data, "--workers", "0", "--out", str(root / "eval")],
                 ["corrupt", "--model", str(root / "model.pt"), *data, "--corruptions", "contrast", "--severities",
                  "1", "--num-images", "1", "--out", str(root / "corrupt")]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code in (0, None)
    return root


def _paths(base: Path, ws: Path) -> dict[str, Path]:
    return {"base": base, "ws": ws, "cs": ws / "cs", "ade": ws / "ade", "model": base / "model.pt",
            "ade_model": base / "ade_model.pt", "out": ws / "out", "bad": ws / "bad.pt", "img0": ws / "cs" / CITY_IMG,
            "lab0": ws / "cs" / CITY_LAB, "marker": ws / "MARKER", "ro": ws / "ro", "yaml": ws / "typo.yaml",
            "run": ws / "run", "empty": ws / "empty"}


def _snapshot(*roots: Path) -> dict[str, tuple]:
    """Every file and folder under ``roots``: (sha256 of bytes, mtime_ns) for files, 'dir' for folders."""
    snap = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_dir():
                snap[str(p)] = ("dir",)
            else:
                snap[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return snap


# ---- the table ----------------------------------------------------------------------------------------------------

CS = ["--data", "cityscapes:{cs}"]
CORRUPT = ["corrupt", "--model", "{model}", *CS, "--corruptions", "contrast", "--severities", "1", "--num-images", "1",
           "--out", "{out}"]
EVAL = ["eval", "--model", "{model}", *CS, "--workers", "0", "--out", "{out}"]
MATERIALIZE = ["corruptions", "materialize", *CS, "--corruptions", "contrast", "--severities", "1", "--out", "{out}"]
ANALYZE = ["analyze", "--model", "{model}", *CS, "--num-images", "1", "--per-class", "4", "--layers", "decoder_input",
           "--tsne-layers", "decoder_input", "--out", "{out}"]
TRAIN = ["train", "synthcity_tiny_baseline", "--out", "{run}", "--set", "data.spec=cityscapes:{cs}",
         *[x for kv in TINY for x in ("--set", kv)]]


def _with(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with the value of ``option`` replaced."""
    i = argv.index(option)
    return [*argv[:i + 1], value, *argv[i + 2:]]


RO = pytest.mark.skipif(not CAN_CHMOD, reason="running as root: a 0o555 folder does not prevent writes")

# (id, argv, setup, expected fragment of the one stderr line)
ROWS = [
    # data check: the dataset readers
    ("check-missing", ["data", "check", "{ws}/nope"], "none", "{ws}/nope: Cityscapes root folder not found"),
    ("check-empty-folder", ["data", "check", "{empty}"], "empty_folder",
     "{empty}/leftImg8bit/val: Cityscapes val images folder not found"),
    ("check-empty-split", ["data", "check", "{cs}"], "empty_split", "{cs}/leftImg8bit/val: no */*_leftImg8bit.png"),
    ("check-no-label", ["data", "check", "{cs}"], "no_label", "{img0}: no label (expected {lab0}"),
    ("check-label-size", ["data", "check", "{cs}"], "label_size", "{lab0}: label is 48x32 (WxH) but its image"),
    ("check-label-values", ["data", "check", "{cs}"], "label_values", "{lab0}: values [40] are not Cityscapes"),
    ("check-label-16bit", ["data", "check", "{cs}"], "label_16bit", "{lab0}: label image has mode I"),
    ("check-label-rgba", ["data", "check", "{cs}"], "label_rgba", "{lab0}: label image has mode RGBA"),
    ("check-label-garbage", ["data", "check", "{cs}"], "label_garbage", "{lab0}: not a readable image"),
    ("check-label-empty", ["data", "check", "{cs}"], "label_empty", "{lab0}: empty file (0 bytes)"),
    ("check-png-truncated", ["data", "check", "{cs}"], "image_truncated", "{img0}: unreadable or truncated"),
    ("check-png-garbage", ["data", "check", "{cs}"], "image_garbage", "{img0}: not a readable image"),
    ("check-png-empty", ["data", "check", "{cs}"], "image_empty", "{img0}: empty file (0 bytes)"),
    ("check-image-16bit", ["data", "check", "{cs}"], "image_16bit", "{img0}: I;16 (16-bit/float) image"),
    ("check-jpeg-truncated", ["data", "check", "{ade}", "--layout", "ade20k"], "jpeg_truncated",
     "{ade}/images/validation/"),
    ("check-jpeg-garbage", ["data", "check", "{ade}", "--layout", "ade20k"], "jpeg_garbage", "not a readable image"),
    ("check-ade-label-values", ["data", "check", "{ade}", "--layout", "ade20k"], "ade_label_values",
     "values [200] are not ADE20K labels"),
    pytest.param("check-json-read-only", ["data", "check", "{cs}", "--json", "{ro}/h.json"], "read_only",
                 "{ro}: cannot write here", marks=RO),
    # data synth
    ("synth-existing-other", ["data", "synth", "--out", "{cs}", "--num-train", "1", "--num-val", "1"], "none",
     "{cs}: already exists and is not this SynthCity dataset"),
    ("synth-size-zero", ["data", "synth", "--out", "{out}", "--size", "0x0"], "none", "--size 0x0"),
    pytest.param("synth-read-only", ["data", "synth", "--out", "{ro}/sc", "--num-train", "1", "--num-val", "1",
                                     "--size", "32x64"], "read_only", "{ro}: cannot write here", marks=RO),
    # models
    ("models-info-unknown", ["models", "info", "nosuch_vit"], "none", "nosuch_vit"),
    ("models-info-set-typo", ["models", "info", "baseline_vit", "--set", "widht=3"], "none", "widht"),
    ("models-info-size", ["models", "info", "baseline_vit", "--size", "axb"], "none", "--size"),
    # corruptions materialize
    ("materialize-unknown-corruption", _with(MATERIALIZE, "--corruptions", "fgo"), "none", "fgo"),
    ("materialize-severity-0", _with(MATERIALIZE, "--severities", "0"), "none", "between 1 and 5"),
    ("materialize-severity-6", _with(MATERIALIZE, "--severities", "6"), "none", "between 1 and 5"),
    ("materialize-unknown-suite", ["corruptions", "materialize", *CS, "--suite", "kitti-c", "--out", "{out}"],
     "none", "unknown suite 'kitti-c'"),
    ("materialize-unknown-backend", [*MATERIALIZE, "--backend", "cuda9"], "none", "cuda9"),
    ("materialize-missing-data", _with(MATERIALIZE, "--data", "cityscapes:{ws}/nope"), "none",
     "{ws}/nope: Cityscapes root folder not found"),
    ("materialize-png-truncated", MATERIALIZE, "image_truncated", "{img0}: unreadable or truncated"),
    ("materialize-png-empty", MATERIALIZE, "image_empty", "{img0}: empty file (0 bytes)"),
    pytest.param("materialize-read-only", _with(MATERIALIZE, "--out", "{ro}/m"), "read_only", "{ro}",
                 marks=RO),
    # corrupt
    ("corrupt-missing-model", _with(CORRUPT, "--model", "{ws}/nope.pt"), "none", "{ws}/nope.pt: file not found"),
    ("corrupt-ckpt-empty", _with(CORRUPT, "--model", "{bad}"), "ckpt_empty", "{bad}: unreadable or truncated"),
    ("corrupt-ckpt-garbage", _with(CORRUPT, "--model", "{bad}"), "ckpt_garbage", "{bad}: "),
    ("corrupt-ckpt-truncated", _with(CORRUPT, "--model", "{bad}"), "ckpt_truncated", "{bad}: unreadable or truncated"),
    ("corrupt-ckpt-evil-pickle", _with(CORRUPT, "--model", "{bad}"), "ckpt_evil_pickle", "{bad}: refused"),
    ("corrupt-ckpt-evil-torch", _with(CORRUPT, "--model", "{bad}"), "ckpt_evil_torch", "{bad}: refused"),
    ("corrupt-ckpt-tampered", _with(CORRUPT, "--model", "{bad}"), "ckpt_tampered",
     "{bad}: the weights do not match their recorded sha256 (the file was modified)"),
    ("corrupt-ckpt-other-arch", _with(CORRUPT, "--model", "{bad}"), "ckpt_other_arch",
     "{bad}: weights do not fit model 'rsseg_vit'"),
    ("corrupt-ckpt-train-state", _with(CORRUPT, "--model", "{bad}"), "ckpt_train_state",
     "{bad}: not a repsep-bench model export"),
    ("corrupt-ckpt-other-classes", _with(CORRUPT, "--model", "{ade_model}"), "none", "predicts 150"),
    ("corrupt-unknown-corruption", _with(CORRUPT, "--corruptions", "fgo"), "none", "fgo"),
    ("corrupt-severity-0", _with(CORRUPT, "--severities", "0"), "none", "between 1 and 5"),
    ("corrupt-severity-6", _with(CORRUPT, "--severities", "1-6"), "none", "between 1 and 5"),
    ("corrupt-missing-data", _with(CORRUPT, "--data", "cityscapes:{ws}/nope"), "none",
     "{ws}/nope: Cityscapes root folder not found"),
    ("corrupt-label-values", CORRUPT, "label_values", "{lab0}: values [40] are not Cityscapes trainIds"),
    ("corrupt-png-garbage", CORRUPT, "image_garbage", "{img0}: not a readable image"),
    ("corrupt-label-values-workers", [*CORRUPT, "--workers", "1"], "label_values",
     "{lab0}: values [40] are not Cityscapes trainIds"),
    ("corrupt-finished-other-run", [*_with(_with(CORRUPT, "--out", "{base}/corrupt"), "--data",
                                           "cityscapes:{base}/cs"), "--seed", "1"], "none",
     "clean.pt: saved by a different run (differs in base_seed);"),
    ("corrupt-reference-not-results", [*CORRUPT, "--reference-results", "{cs}"], "none", "{cs}"),
    pytest.param("corrupt-read-only", _with(CORRUPT, "--out", "{ro}/c"), "read_only", "{ro}", marks=RO),
    # eval
    ("eval-missing-model", _with(EVAL, "--model", "{ws}/nope.pt"), "none", "{ws}/nope.pt: file not found"),
    ("eval-ckpt-truncated", _with(EVAL, "--model", "{bad}"), "ckpt_truncated", "{bad}: unreadable or truncated"),
    ("eval-ckpt-evil-pickle", _with(EVAL, "--model", "{bad}"), "ckpt_evil_pickle", "{bad}: refused"),
    ("eval-ckpt-evil-torch", _with(EVAL, "--model", "{bad}"), "ckpt_evil_torch", "{bad}: refused"),
    ("eval-ckpt-tampered", _with(EVAL, "--model", "{bad}"), "ckpt_tampered",
     "{bad}: the weights do not match their recorded sha256"),
    ("eval-ckpt-other-classes", _with(EVAL, "--model", "{ade_model}"), "none",
     "{ade_model}: the model predicts 150 classes"),
    ("eval-label-rgba", EVAL, "label_rgba", "{lab0}: label image has mode RGBA"),
    ("eval-png-truncated", EVAL, "image_truncated", "{img0}: unreadable or truncated"),
    ("eval-label-values-workers", _with(EVAL, "--workers", "1"), "label_values",
     "{lab0}: values [40] are not Cityscapes trainIds"),
    ("eval-mode", [*EVAL, "--mode", "sliding"], "none", "--mode sliding"),
    ("eval-slide-no-crop", [*EVAL, "--mode", "slide"], "none", "--mode slide: needs --crop and --stride"),
    ("eval-crop", [*EVAL, "--mode", "slide", "--crop", "64", "--stride", "32x32"], "none", "--crop 64"),
    ("eval-scales", [*EVAL, "--scales", "1,x"], "none", "--scales 1,x"),
    ("eval-finished", EVAL, "eval_done", "{out}: already holds a finished eval result"),
    pytest.param("eval-read-only", _with(EVAL, "--out", "{ro}/e"), "read_only", "{ro}", marks=RO),
    # train
    ("train-set-typo", [*TRAIN, "--set", "optim.lrr=0.1"], "none", "unknown key 'optim.lrr'"),
    ("train-set-type", [*TRAIN, "--set", "optim.lr=fast"], "none", "optim.lr"),
    ("train-yaml-typo", ["train", "{yaml}", "--out", "{run}"], "yaml_typo", "{yaml}: unknown key 'optim.lrr'"),
    ("train-yaml-syntax", ["train", "{yaml}", "--out", "{run}"], "yaml_syntax", "{yaml}: not valid YAML"),
    ("train-unknown-recipe", ["train", "synthcity_tiny_rssseg", "--out", "{run}"], "none",
     "synthcity_tiny_rssseg: config file not found"),
    ("train-missing-data", [*TRAIN, "--set", "data.spec=cityscapes:{ws}/nope"], "none",
     "{ws}/nope: Cityscapes root folder not found"),
    ("train-no-train-split", TRAIN, "none", "{cs}/leftImg8bit/train: Cityscapes train images folder not found"),
    ("train-finished", TRAIN, "run_finished", "{run}: already holds a finished train result; pass --overwrite"),
    ("train-unfinished", TRAIN, "run_unfinished", "{run}: holds an unfinished train run; pass --resume"),
    ("train-resume-truncated", [*TRAIN, "--resume"], "run_ckpt_truncated",
     "{run}/checkpoint_last.pt: unreadable or truncated"),
    ("train-resume-evil", [*TRAIN, "--resume"], "run_ckpt_evil", "{run}/checkpoint_last.pt: refused"),
    ("train-resume-overwrite", [*TRAIN, "--resume", "--overwrite"], "run_unfinished",
     "--resume and --overwrite exclude each other"),
    pytest.param("train-read-only", _with(_with(TRAIN, "--out", "{ro}/r"), "--set", "data.spec=synthcity:{base}/sc"),
                 "read_only", "{ro}", marks=RO),
    # analyze
    ("analyze-missing-model", _with(ANALYZE, "--model", "{ws}/nope.pt"), "none", "{ws}/nope.pt: file not found"),
    ("analyze-ckpt-evil", _with(ANALYZE, "--model", "{bad}"), "ckpt_evil_pickle", "{bad}: refused"),
    ("analyze-ckpt-tampered", _with(ANALYZE, "--model", "{bad}"), "ckpt_tampered",
     "{bad}: the weights do not match their recorded sha256"),
    ("analyze-ckpt-other-classes", [*ANALYZE, "--model", "{ade_model}"], "none", "{ade_model}: class table"),
    ("analyze-purity", [*ANALYZE, "--purity", "2"], "none", "--purity"),
    ("analyze-layers", _with(ANALYZE, "--tsne-layers", " , "), "none", ""),
    ("analyze-label-values", ANALYZE, "label_values", "{lab0}: values [40] are not Cityscapes trainIds"),
    ("analyze-finished", ANALYZE, "analyze_done", "{out}: already holds a finished analyze result"),
    # report
    ("report-missing-folder", ["report", "{ws}/nope", "--out", "{out}"], "none", "{ws}/nope: not a folder"),
    ("report-not-an-output", ["report", "{cs}", "--out", "{out}"], "none", "{cs}: not a train, eval, corrupt, shift"),
    ("report-exists", ["report", "{base}/eval", "--out", "{out}"], "report_exists",
     "--out {out}: already holds a finished report result; pass --overwrite"),
    ("report-resamples", ["report", "{base}/eval", "--out", "{out}", "--resamples", "0"], "none", "--resamples 0"),
    pytest.param("report-read-only", ["report", "{base}/eval", "--out", "{ro}/rep"], "read_only", "{ro}",
                 marks=RO),
    # an output path below a regular file cannot be created (the check that also holds when running as root)
    ("check-json-under-file", ["data", "check", "{cs}", "--json", "{img0}/h.json"], "none", "{img0}"),
    ("synth-under-file", ["data", "synth", "--out", "{img0}/sc", "--num-train", "1", "--num-val", "1", "--size",
                          "32x64"], "none", "{img0}"),
    ("materialize-under-file", _with(MATERIALIZE, "--out", "{img0}/m"), "none", "{img0}"),
    ("corrupt-under-file", _with(CORRUPT, "--out", "{img0}/c"), "none", "{img0}"),
    ("eval-under-file", _with(EVAL, "--out", "{img0}/e"), "none", "{img0}"),
    ("train-under-file", _with(_with(TRAIN, "--out", "{img0}/r"), "--set", "data.spec=synthcity:{base}/sc"), "none",
     "{img0}"),
    ("analyze-under-file", _with(ANALYZE, "--out", "{img0}/a"), "none", "{img0}"),
    ("report-under-file", ["report", "{base}/eval", "--out", "{img0}/rep"], "none", "{img0}"),
]
# one row of each kind, rerun as a real process to prove the exit code and the absence of a traceback
SUBPROCESS_ROWS = ("check-png-truncated", "corrupt-ckpt-evil-torch", "train-set-typo")


@pytest.fixture
def work(base, tmp_path, monkeypatch):
    """A per-test copy of the datasets (setups damage it) and the path table; read-only folders are restored."""
    monkeypatch.setenv("REPSEP_CACHE", str(tmp_path / "cache"))
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in ("cs", "ade"):
        shutil.copytree(base / name, ws / name)
    p = _paths(base, ws)
    yield p
    if p["ro"].exists():
        p["ro"].chmod(0o755)


def _prepare(work, argv: list[str], setup: str, fragment: str) -> tuple[list[str], str, dict]:
    SETUPS[setup](work)
    fmt = {k: str(v) for k, v in work.items()}
    return [a.format(**fmt) for a in argv], fragment.format(**fmt), _snapshot(work["ws"], work["base"])


def _message_lines(err: str) -> list[str]:
    """stderr without tqdm progress-bar refreshes (``desc: 40%|####  | 2/5 [...]``), which may precede the error."""
    lines = (ANSI_ESCAPE.sub("", line) for line in re.split(r"[\r\n]+", err))
    return [line for line in lines if line.strip() and not PROGRESS_BAR.match(line)]


def _check(work, before: dict, code, err: str, fragment: str) -> None:
    lines = _message_lines(err)
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]
    assert not work["marker"].exists(), "unpickling ran code"
    if work["ro"].exists():
        work["ro"].chmod(0o755)  # readable again for the snapshot
    assert _snapshot(work["ws"], work["base"]) == before


@pytest.mark.parametrize("name, argv, setup, fragment", [
    pytest.param(*r.values, id=r.values[0], marks=r.marks) if hasattr(r, "values") else pytest.param(*r, id=r[0])
    for r in ROWS])
def test_bad_input(work, capsys, name, argv, setup, fragment):
    argv, fragment, before = _prepare(work, argv, setup, fragment)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    _check(work, before, e.value.code, capsys.readouterr().err, fragment)


@pytest.mark.parametrize("name", SUBPROCESS_ROWS)
def test_bad_input_real_process(work, name):
    row = next(r for r in ROWS if not hasattr(r, "values") and r[0] == name)
    argv, fragment, before = _prepare(work, *row[1:])
    proc = subprocess.run([sys.executable, "-m", "repsep.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    _check(work, before, proc.returncode, proc.stderr, fragment)
