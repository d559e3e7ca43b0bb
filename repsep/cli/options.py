"""Option parsers and help texts shared by several command modules, and the bounds of every numeric option.

:func:`parse_size` and :func:`parse_scales` turn option strings into values, each bad one a one-line
:class:`UserError` naming the option. :func:`bound_numeric_options` gives every int and float option of the app
the bounds in :data:`OPTION_BOUNDS` (or the defaults: ints 0..2**31-1, floats finite and >= 0), checked by click
before the command runs, so no option value reaches torch, numpy or the OS unchecked.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import typer

from repsep.errors import UserError
from repsep.schema import MAX_PIXELS, UINT32_MAX

SIZE_MINIMUM = {"--crop": 16}
"""Smallest side (pixels) per size option; others need 1. A 16-pixel slide window is one ViT patch."""
SCALE_RANGE = (0.0625, 16.0)
MAX_SCALES = 16
_SIZE = re.compile(r"^\s*([0-9]{1,6})\s*[xX]\s*([0-9]{1,6})\s*$")

INT_MAX = 2**31 - 1
OPTION_BOUNDS: dict[str, tuple[float, float]] = {
    "--seed": (0, UINT32_MAX), "--subset-seed": (0, UINT32_MAX),
    "--thin-share": (0.0, 1.0), "--lighting-range": (0.0, 0.9), "--purity": (0.0, 1.0), "--hf-cutoff": (0.0, 1.4142),
    "--cache-gb": (0.0, 1e6), "--texture-contrast": (0.0, 100.0), "--object-density": (0.0, 100.0),
}
"""(low, high) of numeric options, by option name, in every command; options not listed: ints 0..INT_MAX,
floats 0..1e12. Floats must also be finite. A ``min=`` / ``max=`` of the option itself is checked too."""


def parse_size(text: str, option: str, minimum: int | None = None) -> tuple[int, int]:
    """``"256x512"`` -> (256, 512): each side between ``minimum`` (default per option, else 1) and MAX_PIXELS."""
    match = _SIZE.match(text)
    if not match:
        raise UserError(f"{option} {text}: expected HEIGHTxWIDTH, e.g. 256x512")
    low = SIZE_MINIMUM.get(option, 1) if minimum is None else minimum
    height, width = int(match[1]), int(match[2])
    if not (low <= height <= MAX_PIXELS and low <= width <= MAX_PIXELS):
        raise UserError(f"{option} {text}: each side must be between {low} and {MAX_PIXELS} pixels")
    return height, width


def parse_scales(text: str) -> tuple[float, ...]:
    """``"0.5,1,1.5"`` -> (0.5, 1.0, 1.5): 1..16 finite factors between 0.0625 and 16."""
    try:
        scales = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--scales {text}: expected comma-separated factors, e.g. 0.5,0.75,1.0,1.25,1.5,1.75") from None
    low, high = SCALE_RANGE
    if any(not (math.isfinite(s) and low <= s <= high) for s in scales):
        raise UserError(f"--scales {text}: factors must be finite numbers between {low} and {high:g}")
    if len(scales) > MAX_SCALES:
        raise UserError(f"--scales {text}: at most {MAX_SCALES} factors")
    return scales


# ---- bounds of every numeric option -----------------------------------------------------------------------------

def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _bounds_callback(low: float, high: float, previous: Callable | None) -> Callable:
    def callback(ctx: Any, param: Any, value: Any) -> Any:
        for v in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                raise typer.BadParameter(f"{v} is not a finite number.", ctx=ctx, param=param)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not low <= v <= high:
                raise typer.BadParameter(f"{v} is not in the range {_num(low)}..{_num(high)}.", ctx=ctx, param=param)
        return previous(ctx, param, value) if previous is not None else value
    return callback


def _numeric_kind(param: Any) -> type | None:
    """int or float for a numeric parameter (typer >= 0.2x: its annotation; older typer: its click type)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is not None:
        options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
            else (annotation,)
        return next((t for t in options if t in (int, float)), None)
    name = getattr(getattr(param, "type", None), "name", "")
    return int if name.startswith("integer") else float if name.startswith("float") else None


def walk_commands(command: Any, path: str = "repsep-bench") -> Iterator[tuple[str, Any]]:
    """``(command path, click command)`` of ``command`` and every sub-command below it, parents first."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from walk_commands(sub, f"{path} {name}")


def bound_numeric_options(command: Any) -> Any:
    """Give every int / float parameter of ``command`` and its sub-commands the bounds of :data:`OPTION_BOUNDS`."""
    for _, each in walk_commands(command):
        for param in each.params:
            kind = _numeric_kind(param)
            if kind is not None:
                name = next((o for o in param.opts if o.startswith("--")), "")
                low, high = OPTION_BOUNDS.get(name, (0, INT_MAX) if kind is int else (0.0, 1e12))
                param.callback = _bounds_callback(low, high, param.callback)
    return command


_LIST_ITEM = re.compile(r"^(\s|[-*] |\||\d+[.)] )")
"""A docstring line that starts a list item, a table row or an indented block: it keeps its own line."""


def reflow_paragraphs(text: str) -> str:
    """``text`` with the single line breaks inside each paragraph turned into spaces (list items, table rows,
    indented lines and click's ``\\b`` paragraphs keep theirs)."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines = paragraph.splitlines()
        if not lines or lines[0].startswith("\b"):
            paragraphs.append(paragraph)
            continue
        joined = [lines[0]]
        for line in lines[1:]:
            if _LIST_ITEM.match(line):
                joined.append(line)
            else:
                joined[-1] = f"{joined[-1]} {line.strip()}"
        paragraphs.append("\n".join(joined))
    return "\n\n".join(paragraphs)


def reflow_help(command: Any) -> Any:
    """Reflow the help text of ``command`` and its sub-commands: typer 0.29 keeps a docstring's single line breaks
    after its first paragraph, which rich then wraps again, breaking sentences mid-line."""
    for _, each in walk_commands(command):
        if each.help:
            each.help = reflow_paragraphs(each.help)
    return command


PRECISION_HELP = ("Inference precision of the model's forward pass: fp32, bf16 or fp16 (autocast; logits, argmax "
                  "and metrics stay fp32). Default: bf16 on CUDA, fp32 on CPU. Recorded in the result; results of "
                  "different precisions are not compared.")

SEVERITIES_HELP = "Severities: a range 1-5, one value 3, or a list 1,3,5 (1 = mild ... 5 = strong)."
CORRUPTIONS_HELP = ("Comma-separated corruption names instead of the whole suite, e.g. fog,snow "
                     "(`repsep-bench corruptions list` shows them).")
BACKEND_HELP = ("reference: the imagecorruptions package on CPU, seeded per image (the published protocol). "
                 "torch: batched torch ports (faster; falls back to reference for corruptions it lacks).")
CORRUPT_ON_HELP = ("Where corruption runs. auto: model whenever the backend is batched (torch) and no --from-disk "
                    "is given, else workers. model: the clean images are decoded once per sweep (see --cache-gb), "
                    "then corrupted --corrupt-batch at a time on the model's device (GPU or CPU); glass_blur and "
                    "spatter, which torch lacks, still run in workers. workers: image by image in the DataLoader "
                    "workers, beside the model. The results do not depend on it on CPU; on a GPU the torch ports "
                    "draw other random pixels, so those cells are recorded as torch:cuda.")


MODEL_SET_HELP = ("Override a ModelConfig field, repeatable: --set size=L, --set backbone=vit_base_patch16_384, "
                   "--set width=192, --set taps=[6,12,18,24], --set dca=false, --set discrepancy=laplacian. "
                   "`models list` shows the sizes; docs/models.md lists every field.")
