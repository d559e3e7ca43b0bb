"""Property tests (hypothesis): arbitrary config values and option values never reach torch, numpy or the OS
unchecked. Whatever the value, a config either loads (and round-trips through config.yaml) or is refused with one
UserError line naming its source; a command line either fails with exit code 2 and exactly one ``error:`` line on
stderr (no traceback), or would start work, which every command here is made to refuse afterwards (a missing
model, dataset or run folder), so no example does real work."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import io
import os
import shutil
import tempfile
from pathlib import Path

import yaml
from cli_helpers import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repsep.config import (
    DEFAULT_RECIPE,
    DataConfig,
    EvalConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
    load_config,
    save_config,
    set_source,
)
from repsep.errors import UserError
from repsep.models import ModelConfig

EXAMPLES = int(os.environ.get("REPSEP_PROPERTY_EXAMPLES", "30"))
"""Examples per command-line property (config properties get twice as many); raise it for a longer hunt."""
SETTINGS = settings(deadline=None, max_examples=2 * EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
CLI_SETTINGS = settings(deadline=None, max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
WORK = Path(tempfile.mkdtemp(prefix="repsep-properties-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)
MISSING = WORK / "missing"
"""Never created: the model / dataset / run folder every command line below ends up refusing."""

KEYS = ([f"{section}.{f.name}" for section, cls in (("data", DataConfig), ("optim", OptimConfig),
                                                     ("schedule", ScheduleConfig), ("eval", EvalConfig))
         for f in dataclasses.fields(cls)]
        + [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("model", "data", "optim", "schedule",
                                                                               "eval")]
        + [f"model.{f.name}" for f in dataclasses.fields(ModelConfig)])

# ---- strategies -----------------------------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_SCALAR = st.one_of(st.integers(-2**70, 2**70), st.integers(-3, 600), st.floats(), st.booleans(), st.none(), _TEXT)
_VALUE = st.one_of(_SCALAR, st.lists(_SCALAR, max_size=4), st.lists(st.integers(-5, 5000), min_size=2, max_size=2),
                   st.lists(st.floats(-2, 20), min_size=1, max_size=3))


def _yaml(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
    return text.removesuffix("\n...\n").strip()


YAML_TEXT = st.one_of(_VALUE.map(_yaml), _TEXT)
"""A --set value: YAML of an arbitrary value, or arbitrary text."""

NUMBER_TEXT = st.one_of(
    st.integers(-10**12, 10**12).map(str), st.floats().map(repr), _TEXT,
    st.sampled_from(["nan", "inf", "-inf", "-0", "1e309", "", " ", "0x10", "1_000", "\u00b2", "\u0661", "4294967296"]))
SIZE_TEXT = st.one_of(st.from_regex(r"\A-?[0-9]{0,6}[xX*]-?[0-9]{0,6}\Z"),
                      st.tuples(st.integers(-2, 20000), st.integers(-2, 20000)).map(lambda t: f"{t[0]}x{t[1]}"),
                      NUMBER_TEXT)
SCALES_TEXT = st.one_of(st.lists(NUMBER_TEXT, min_size=1, max_size=4).map(",".join),
                        st.lists(st.floats(-1, 20), min_size=1, max_size=20).map(lambda v: ",".join(map(str, v))))
SEVERITIES_TEXT = st.one_of(st.from_regex(r"\A-?[0-9]{0,3}(-[0-9]{0,3})?(,[0-9]{0,3})*\Z"), NUMBER_TEXT)


# ---- helpers --------------------------------------------------------------------------------------------------

def _run(argv: list[str]) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(argv)
    text = err.getvalue()
    return code, [line for line in text.splitlines() if line.strip()], text


def assert_one_error_line(argv: list[str]) -> str:
    code, lines, err = _run(argv)
    assert "Traceback" not in err, err
    assert code == 2, (argv, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
    return lines[0]


# ---- the config schema ------------------------------------------------------------------------------------------

@SETTINGS
@given(key=st.sampled_from(KEYS), text=YAML_TEXT)
def test_any_set_value_loads_or_is_one_error_naming_the_item(key, text):
    item = f"{key}={text}"
    try:
        cfg = load_config(DEFAULT_RECIPE, [item])
    except UserError as e:
        message = str(e)
        assert "\n" not in message and message.startswith(f"{set_source(item)}: "), message
        return
    assert isinstance(cfg, TrainConfig)
    with tempfile.TemporaryDirectory() as tmp:  # a config that loads is saved and loads back equal
        save_config(cfg, Path(tmp) / "config.yaml")
        assert load_config(Path(tmp) / "config.yaml") == cfg


@SETTINGS
@given(section=st.sampled_from(["data", "optim", "schedule", "eval"]), data=st.data())
def test_any_recipe_section_loads_or_is_one_error_naming_the_file(section, data):
    cls = {"data": DataConfig, "optim": OptimConfig, "schedule": ScheduleConfig, "eval": EvalConfig}[section]
    names = [f.name for f in dataclasses.fields(cls)]
    values = data.draw(st.dictionaries(st.sampled_from(names), _VALUE, max_size=3))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(yaml.safe_dump({"model": {"name": "rsseg_vit"}, section: values}, allow_unicode=True))
        try:
            assert isinstance(load_config(path), TrainConfig)
        except UserError as e:
            assert "\n" not in str(e) and str(e).startswith(f"{path}: "), str(e)


@CLI_SETTINGS
@given(key=st.sampled_from(KEYS), text=YAML_TEXT)
def test_train_with_any_set_value_is_one_error_line(key, text):
    """Valid values pass the config and are then refused on the missing dataset: no training starts."""
    assert_one_error_line(["train", DEFAULT_RECIPE, "--out", str(WORK / "run"), "--set", f"{key}={text}",
                           "--set", f"data.spec=cityscapes:{MISSING}"])


# ---- each command's options -------------------------------------------------------------------------------------

EVAL_OPTIONS = {"--crop": SIZE_TEXT, "--stride": SIZE_TEXT, "--scales": SCALES_TEXT, "--workers": NUMBER_TEXT,
                "--mode": _TEXT, "--split": _TEXT}
CORRUPT_OPTIONS = {"--severities": SEVERITIES_TEXT, "--num-images": NUMBER_TEXT, "--cache-gb": NUMBER_TEXT,
                   "--seed": NUMBER_TEXT, "--corrupt-batch": NUMBER_TEXT, "--workers": NUMBER_TEXT,
                   "--corruptions": _TEXT, "--suite": _TEXT, "--backend": _TEXT, "--corrupt-on": _TEXT}
ANALYZE_OPTIONS = {"--num-images": NUMBER_TEXT, "--per-class": NUMBER_TEXT, "--batch-size": NUMBER_TEXT,
                   "--purity": NUMBER_TEXT, "--hf-cutoff": NUMBER_TEXT, "--seed": NUMBER_TEXT, "--layers": _TEXT}
SYNTH_OPTIONS = {"--num-train": NUMBER_TEXT, "--num-val": NUMBER_TEXT, "--size": SIZE_TEXT, "--seed": NUMBER_TEXT,
                 "--texture-contrast": NUMBER_TEXT, "--object-density": NUMBER_TEXT, "--thin-share": NUMBER_TEXT,
                 "--lighting-range": NUMBER_TEXT, "--workers": NUMBER_TEXT, "--layout": _TEXT}
REPORT_OPTIONS = {"--seed": NUMBER_TEXT, "--resamples": NUMBER_TEXT}


def _option(options: dict) -> st.SearchStrategy:
    return st.sampled_from(sorted(options)).flatmap(lambda name: st.tuples(st.just(name), options[name]))


@CLI_SETTINGS
@given(option=_option(EVAL_OPTIONS))
def test_eval_options(option):
    assert_one_error_line(["eval", "--model", str(MISSING / "model.pt"), "--out", str(WORK / "ev"), *option])


@CLI_SETTINGS
@given(option=_option(CORRUPT_OPTIONS))
def test_corrupt_options(option):
    assert_one_error_line(["corrupt", "--model", str(MISSING / "model.pt"), "--out", str(WORK / "co"), *option])


@CLI_SETTINGS
@given(option=_option(ANALYZE_OPTIONS))
def test_analyze_options(option):
    assert_one_error_line(["analyze", "--model", str(MISSING / "model.pt"), "--out", str(WORK / "an"), *option])


def _foreign_folder() -> Path:
    """An existing folder holding a file of the user's: `data synth --out` refuses it after the options."""
    folder = WORK / "mine"
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("mine\n")
    return folder


@CLI_SETTINGS
@given(option=_option(SYNTH_OPTIONS))
def test_synth_options(option):
    line = assert_one_error_line(["data", "synth", "--out", str(_foreign_folder()), *option])
    assert (WORK / "mine" / "notes.txt").read_text() == "mine\n", line
    assert sorted(p.name for p in (WORK / "mine").iterdir()) == ["notes.txt"], line


@CLI_SETTINGS
@given(option=_option(REPORT_OPTIONS))
def test_report_options(option):
    assert_one_error_line(["report", str(MISSING), "--out", str(WORK / "rep"), *option])


@CLI_SETTINGS
@given(option=st.tuples(st.just("--stop-at"), NUMBER_TEXT) | st.tuples(st.just("--set"), _TEXT))
def test_train_options(option):
    assert_one_error_line(["train", DEFAULT_RECIPE, "--out", str(WORK / "run"), *option,
                           "--set", f"data.spec=cityscapes:{MISSING}"])


@CLI_SETTINGS
@given(argv=st.lists(_TEXT, max_size=4))
def test_arbitrary_words_after_a_command(argv):
    """Unknown options, stray arguments and missing values: one line (``--help`` aside, which prints help)."""
    if any(a.strip() in ("--help", "-h") for a in argv):
        return
    assert_one_error_line(["eval", "--model", str(MISSING / "model.pt"), *argv])
