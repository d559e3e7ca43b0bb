"""Reading input folders into typed records: :class:`Run` (one folder) and :class:`ModelEntry` (one model).

A model is identified by its weights' sha256 (the ``settings`` block's ``model_sha256``, the manifest's, or the
checkpoint file hashed when it is at hand), so two models whose folders share a name are two entries, and one
model reached through several folders is one. Names are labels: the training-run folder's name, lengthened
with parent folders (``exp1/vit``) where two different models share it. The comparability checks of
:mod:`repsep.comparability` run here, before any number is computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from analysis.naming import distinct_names, run_folder_of
from repsep.comparability import CORRUPT_FIELDS, EVAL_FIELDS, NO_SETTINGS, differences, has_settings
from repsep.errors import UserError
from repsep.io import read_json
from repsep.manifest import sha256_file

KINDS = ("train", "eval", "corrupt", "shift", "analyze")
RESULT_FILES = {  # the files that identify a kind (the first present wins when manifest.json has no 'kind')
    "train": ("model_final.pt", "DONE"),
    "eval": ("metrics.json",),
    "corrupt": ("robustness.json",),
    "shift": ("shift.json",),
    "analyze": ("similarity.json", "separation.json"),
}
SETTINGS_FILES = {"eval": ("metrics.json",), "corrupt": ("robustness.json",), "shift": ("shift.json",),
                  "analyze": ("summary.json", "similarity.json", "separation.json")}


def finite(value: Any) -> float | None:
    """``value`` as a float, None when it is missing, null or NaN (e.g. the mIoU of an all-ignore label set)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class Run:
    """One input folder: its kind, manifest, ``settings`` block (None when it records none), the checkpoint it
    belongs to and that model's identity ``key`` (``sha256:<hex>`` or ``path:<folder>``); ``model`` is the display
    name, set by :func:`gather_models`. An analyze folder compares several models (``models``)."""

    path: Path
    kind: str
    manifest: dict[str, Any]
    checkpoint: Path | None = None
    key: str = ""
    settings: dict[str, Any] | None = None
    models: list[str] = field(default_factory=list)
    model: str = ""

    def json(self, name: str) -> Any:
        return read_json(self.path / name)

    @cached_property
    def result(self) -> dict[str, Any]:
        """The main JSON of an eval (``metrics.json``), corrupt (``robustness.json``) or shift (``shift.json``)
        folder."""
        data = self.json(RESULT_FILES[self.kind][0])
        if not isinstance(data, dict):
            raise UserError(f"{self.path / RESULT_FILES[self.kind][0]}: not a JSON object")
        return data

    @property
    def dataset(self) -> str | None:
        """The dataset (spec and split) this result was computed on, as recorded."""
        s = self.settings or {}
        spec = s.get("dataset")
        if spec is None and self.kind in ("eval", "corrupt"):
            spec = self.result.get("dataset")
        if spec is None:
            spec = (self.manifest.get("inputs") or {}).get("data") or (self.manifest.get("inputs") or {}).get("dataset")
        split = s.get("split") or (self.result.get("split") if self.kind in ("eval", "corrupt") else None)
        return None if spec is None else f"{spec}" + (f" ({split})" if split else "")

    @property
    def num_images(self) -> int | None:
        value = (self.settings or {}).get("num_images")
        if value is None and self.kind in ("eval", "corrupt"):
            value = self.result.get("num_images")
        return None if value is None else int(value)


@dataclass
class ModelEntry:
    """Everything the report knows about one model, gathered from all of its runs."""

    name: str
    key: str
    runs: list[Run] = field(default_factory=list)
    model_config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # params (deployed), gmacs, image_size
    eval_ss: Run | None = None
    eval_ms: Run | None = None
    corrupt: Run | None = None
    shift: Run | None = None

    @property
    def train(self) -> Run | None:
        return next((r for r in self.runs if r.kind == "train"), None)

    def iterations(self) -> int | None:
        """Training iterations (``schedule.iters`` of the saved config) when the train folder was given."""
        from repsep.engine.run_folder import load_run_config

        return None if self.train is None else int(load_run_config(self.train.path).schedule.iters)

    def has_clean(self) -> bool:
        return self.eval_ss is not None or self.corrupt is not None

    def clean_miou(self) -> float | None:
        """Single-scale clean mIoU (%) of eval, else corrupt (whose settings the comparability checks compared);
        None when not evaluated or undefined. A shift folder's clean entry stays in the natural-shift table."""
        if self.eval_ss is not None:
            return finite(self.eval_ss.result.get("mIoU"))
        if self.corrupt is not None:
            return finite(self.corrupt.result.get("clean"))
        return None


# ---- one folder -------------------------------------------------------------------------------------------------

def detect_kind(path: Path) -> tuple[str, dict[str, Any]]:
    """(kind, manifest) of an output folder; one that is none of train/eval/corrupt/shift/analyze is a UserError."""
    if not path.is_dir():
        raise UserError(f"{path}: not a folder (give train/eval/corrupt/shift/analyze output folders)")
    manifest = read_json(path / "manifest.json") if (path / "manifest.json").is_file() else {}
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    if kind not in KINDS:
        kind = next((k for k, files in RESULT_FILES.items() if any((path / f).exists() for f in files)), None)
    if kind is None:
        raise UserError(f"{path}: not a train, eval, corrupt, shift or analyze output folder (no manifest.json "
                        "'kind' "
                        f"and none of {', '.join(f for files in RESULT_FILES.values() for f in files)})")
    return kind, manifest if isinstance(manifest, dict) else {}


def _checkpoints_in(value: Any) -> list[str]:
    """Every string in a (nested) manifest 'inputs' value that names a ``.pt``/``.pth`` file."""
    if isinstance(value, str):
        return [value] if value.endswith((".pt", ".pth")) else []
    if isinstance(value, dict):
        return [p for v in value.values() for p in _checkpoints_in(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _checkpoints_in(v)]
    return []


def _read_settings(path: Path, kind: str) -> dict[str, Any] | None:
    for name in SETTINGS_FILES.get(kind, ()):
        if (path / name).is_file():
            data = read_json(path / name)
            settings = data.get("settings") if isinstance(data, dict) else None
            if has_settings(settings):
                return settings
    return None


_HASHES: dict[Path, str] = {}


def _hash(file: Path) -> str | None:
    """sha256 of a checkpoint file when it exists (cached per resolved path)."""
    resolved = file.expanduser().resolve()
    if resolved not in _HASHES:
        if not resolved.is_file():
            return None
        _HASHES[resolved] = sha256_file(resolved)
    return _HASHES[resolved]


def read_run(path: str | Path) -> Run:
    """Read one folder: kind, manifest, settings, checkpoint and model identity."""
    path = Path(path)
    kind, manifest = detect_kind(path)
    settings = _read_settings(path, kind)
    if kind == "analyze":
        sim = read_json(path / "similarity.json") if (path / "similarity.json").is_file() else {}
        return Run(path, kind, manifest, settings=settings, models=list(sim.get("models", {})))
    if kind == "train":
        checkpoint = path / "model_final.pt"
        sha = _hash(checkpoint)
    else:
        found = list(dict.fromkeys(_checkpoints_in(manifest.get("inputs", {}))))
        if len(found) > 1:
            raise UserError(f"{path / 'manifest.json'}: names several checkpoints ({', '.join(found)}); the report "
                            "needs one model per output folder")
        checkpoint = Path(found[0]) if found else None
        sha = (settings or {}).get("model_sha256") or (manifest.get("inputs") or {}).get("model_sha256")
        if not sha and checkpoint is not None:
            sha = _hash(checkpoint)
    where = run_folder_of(checkpoint) if checkpoint is not None else path
    key = f"sha256:{sha}" if sha else f"path:{where.expanduser().resolve()}"
    return Run(path, kind, manifest, checkpoint, key, settings)


# ---- models -----------------------------------------------------------------------------------------------------

def _is_multiscale(run: Run) -> bool:
    inference = (run.settings or {}).get("inference") or run.result
    scales = inference.get("scales") or [1.0]
    return bool(inference.get("flip")) or [float(s) for s in scales] != [1.0]


def _label_folder(run: Run) -> Path:
    if run.kind == "train":
        return run.path.expanduser().resolve()
    if run.checkpoint is not None:
        return run_folder_of(run.checkpoint)
    return run.path.expanduser().resolve()


def gather_models(runs: Sequence[Run]) -> dict[str, ModelEntry]:
    """Group train/eval/corrupt runs by model identity (in the order first seen), name the models and pick each
    model's evaluations; sets ``run.model``. Model config and cost are filled by :mod:`analysis.report.costs`."""
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        if run.kind != "analyze":
            by_key.setdefault(run.key, []).append(run)
    folders = []
    for group in by_key.values():
        label_run = next((r for r in group if r.kind == "train"), group[0])
        folders.append(_label_folder(label_run))
    models: dict[str, ModelEntry] = {}
    for name, (key, group) in zip(distinct_names(folders), by_key.items(), strict=True):
        entry = models[name] = ModelEntry(name, key)
        for run in group:
            run.model = name
            entry.runs.append(run)
            if run.kind == "eval":
                slot = "eval_ms" if _is_multiscale(run) else "eval_ss"
                if getattr(entry, slot) is not None:
                    raise UserError(f"{run.path}: a second {'multi' if slot == 'eval_ms' else 'single'}-scale eval "
                                    f"of model {name} (the first is {getattr(entry, slot).path}); give one")
                setattr(entry, slot, run)
            elif run.kind == "corrupt":
                if entry.corrupt is not None:
                    raise UserError(f"{run.path}: a second corrupt output of model {name} "
                                    f"(the first is {entry.corrupt.path}); give one")
                entry.corrupt = run
            elif run.kind == "shift":
                if entry.shift is not None:
                    raise UserError(f"{run.path}: a second shift output of model {name} "
                                    f"(the first is {entry.shift.path}); give one")
                entry.shift = run
    for run in runs:
        if run.kind == "analyze":
            run.model = ", ".join(run.models)
    return models


# ---- comparability ----------------------------------------------------------------------------------------------

def check_comparable(runs: Sequence[Run], models: dict[str, ModelEntry], *, allow_mismatch: bool) -> list[str]:
    """Refuse results that cannot be compared: one that records no settings, and evaluations (single-scale,
    multi-scale) or robustness sweeps of different models that differ in any field of
    :data:`~repsep.comparability.EVAL_FIELDS` / :data:`~repsep.comparability.CORRUPT_FIELDS` (each compared with
    the first of its kind). UserError naming the first difference and both folders; with ``allow_mismatch``
    every difference is returned instead, as warning lines."""
    warnings: list[str] = []

    def found(items: list[str], lead: str) -> None:
        if items and not allow_mismatch:
            raise UserError(f"{lead}{items[0]}; pass --allow-mismatch to compare them anyway")
        warnings.extend(f"{lead}{item}" for item in items)

    for run in runs:
        if run.kind != "train" and run.settings is None:
            found([NO_SETTINGS], f"{run.path}: ")
    for slot, fields in (("eval_ss", EVAL_FIELDS), ("eval_ms", EVAL_FIELDS), ("corrupt", CORRUPT_FIELDS)):
        done = [getattr(m, slot) for m in models.values() if getattr(m, slot) is not None]
        done = [r for r in done if r.settings is not None]
        for other in done[1:]:
            found(differences(done[0].settings, other.settings, fields),  # type: ignore[arg-type]
                  f"{done[0].path} and {other.path} differ in ")
    shifts = [m.shift for m in models.values() if m.shift is not None and m.shift.settings is not None]
    for other in shifts[1:]:
        found(shift_differences(shifts[0], other), f"{shifts[0].path} and {other.path} differ in ")
    return warnings


def shift_entries(run: Run) -> list[dict[str, Any]]:
    """The dataset entries of a shift result, the clean one first (each a dict with ``name``, ``mIoU``,
    ``ratio``, ``num_images``, ``settings`` ...)."""
    entries = [run.result.get("clean"), *(run.result.get("entries") or [])]
    if not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries):
        raise UserError(f"{run.path / 'shift.json'}: not a shift result (no 'clean' and 'entries' records)")
    return entries


def shift_differences(a: Run, b: Run) -> list[str]:
    """How two shift results differ: another list of datasets, or a dataset entry evaluated on other data,
    images or inference (:data:`~repsep.comparability.EVAL_FIELDS`), as ``"shift entry NAME: field: A vs B"``."""
    ea, eb = shift_entries(a), shift_entries(b)
    if [e["name"] for e in ea] != [e["name"] for e in eb]:  # the tables pair entries by name and position
        return [f"shift datasets: {', '.join(e['name'] for e in ea)} vs {', '.join(e['name'] for e in eb)}"]
    out = []
    for x, y in zip(ea, eb, strict=True):
        if not (has_settings(x.get("settings")) and has_settings(y.get("settings"))):
            out.append(f"shift entry {x['name']}: {NO_SETTINGS}")
            continue
        out += [f"shift entry {x['name']}: {d}" for d in differences(x["settings"], y["settings"], EVAL_FIELDS)]
    return out


def same_images(a: Run, b: Run) -> bool:
    """Whether two results may be paired image by image: the same dataset fingerprint (or, for results that
    record no settings, nothing says otherwise)."""
    fa, fb = (a.settings or {}).get("dataset_fingerprint"), (b.settings or {}).get("dataset_fingerprint")
    return fa == fb
