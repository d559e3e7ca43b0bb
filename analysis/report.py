"""``repsep-bench report``: combine train / eval / corrupt / analyze output folders into one reproducible report.

The report folder holds ``README.md`` (tables, figure links, how it was made), ``tables/<name>.{csv,tex}``,
``figures/*.{png,pdf}``, ``report.json`` (every number, for programs) and ``manifest.json`` (provenance of the
inputs). It is built in a temporary sibling folder and renamed into place, so an interrupted run leaves nothing
half-written. Tables are a pure function of the input files, seed and resample count (byte-identical on rerun).

Models are named after their training run: the folder holding ``model_final.pt`` (for any input, the checkpoint
its manifest names), or the input folder's own name when no checkpoint is recorded.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.bootstrap import Interval, match_ids, paired_difference
from analysis.robustness_plots import plot_severity, save_figure, severity_curve
from analysis.tables import Column, Table, to_csv, to_latex, to_markdown
from analysis.training_curves import convergence_table, curve_figure, val_curve
from corruptions.suite import GROUPS, group_of
from repsep.errors import UserError
from repsep.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json, temp_sibling_dir
from repsep.manifest import build_manifest, sha256_file

KINDS = ("train", "eval", "corrupt", "analyze")
RESULT_FILES = {  # the files that identify a kind (the first present wins when manifest.json has no 'kind')
    "train": ("model_final.pt", "DONE"),
    "eval": ("metrics.json",),
    "corrupt": ("robustness.json",),
    "analyze": ("similarity.json", "separation.json"),
}
HASHED_FILES = ("config.yaml", "metrics.json", "metrics.jsonl", "robustness.json", "per_image.npz", "similarity.json",
                "separation.json", "model_info.json")
SWITCHES = ("pathway", "sasm", "dca")
LADDER = {(False, False, False): "baseline", (True, False, False): "+pathway", (True, True, False): "+SASM",
          (True, True, True): "+DCA"}
CHECKPOINT_STEMS = ("model_final", "checkpoint_last")


@dataclass
class Run:
    """One input folder: its kind, manifest and the models (training-run names) it belongs to.

    train/eval/corrupt folders hold one model (``models[0]``, ``checkpoint``); an analyze folder may compare several.
    """

    path: Path
    kind: str
    manifest: dict[str, Any]
    models: list[str]
    checkpoint: Path | None

    @property
    def model(self) -> str:
        return ", ".join(self.models)

    def json(self, name: str) -> Any:
        return read_json(self.path / name)


@dataclass
class ModelEntry:
    """Everything the report knows about one model, gathered from all of its runs."""

    name: str
    runs: list[Run] = field(default_factory=list)
    model_config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # params (inference), gflops (GMACs), image_size
    eval_ss: Run | None = None
    eval_ms: Run | None = None
    corrupt: Run | None = None

    @property
    def switches(self) -> tuple[bool, bool, bool] | None:
        if not self.model_config:
            return None
        return tuple(bool(self.model_config.get(k, False)) for k in SWITCHES)  # type: ignore[return-value]

    @property
    def step(self) -> str:
        sw = self.switches
        if sw is None:
            return "?"
        return LADDER.get(sw, "+".join(k for k, on in zip(SWITCHES, sw, strict=True) if on))

    @property
    def train(self) -> Run | None:
        return next((r for r in self.runs if r.kind == "train"), None)

    def iterations(self) -> int | None:
        """Training iterations (``schedule.iters`` of the saved config) when the train folder was given."""
        from repsep.engine.train import load_run_config

        return None if self.train is None else int(load_run_config(self.train.path).schedule.iters)

    def clean_miou(self) -> float | None:
        if self.eval_ss is not None:
            return float(self.eval_ss.json("metrics.json")["mIoU"])
        if self.corrupt is not None:
            return float(self.corrupt.json("robustness.json")["clean"])
        return None


# ---- reading input folders ------------------------------------------------------------------------------------

def detect_kind(path: Path) -> tuple[str, dict[str, Any]]:
    """(kind, manifest) of an output folder; a folder that is none of train/eval/corrupt/analyze is a UserError."""
    if not path.is_dir():
        raise UserError(f"{path}: not a folder (give train/eval/corrupt/analyze output folders)")
    manifest = read_json(path / "manifest.json") if (path / "manifest.json").is_file() else {}
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    if kind not in KINDS:
        kind = next((k for k, files in RESULT_FILES.items() if any((path / f).exists() for f in files)), None)
    if kind is None:
        raise UserError(f"{path}: not a train, eval, corrupt or analyze output folder (no manifest.json 'kind' "
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


def model_name_of(checkpoint: Path) -> str:
    """A training run's name from its checkpoint path: ``runs/vit_b_rsseg/model_final.pt`` -> ``vit_b_rsseg``."""
    return checkpoint.parent.name if checkpoint.stem in CHECKPOINT_STEMS and checkpoint.parent.name else checkpoint.stem


def read_run(path: str | Path) -> Run:
    path = Path(path)
    kind, manifest = detect_kind(path)
    if kind == "train":
        return Run(path, kind, manifest, [path.resolve().name], path / "model_final.pt")
    if kind == "analyze":
        models = read_json(path / "similarity.json").get("models", {}) if (path / "similarity.json").is_file() else {}
        return Run(path, kind, manifest, list(models), None)
    found = list(dict.fromkeys(_checkpoints_in(manifest.get("inputs", {}))))
    if len(found) > 1:
        raise UserError(f"{path / 'manifest.json'}: names several checkpoints ({', '.join(found)}); the report "
                        "needs one model per output folder")
    checkpoint = Path(found[0]) if found else None
    name = model_name_of(checkpoint) if checkpoint else path.resolve().name
    return Run(path, kind, manifest, [name], checkpoint)


def _is_multiscale(metrics: dict[str, Any]) -> bool:
    scales = metrics.get("scales") or [1.0]
    return bool(metrics.get("flip")) or [float(s) for s in scales] != [1.0]


def _image_size(img_size: Any, crop: Any) -> tuple[int, int] | None:
    size = img_size if img_size is not None else crop
    if size is None:
        return None
    return (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))


def _fill_model(entry: ModelEntry) -> None:
    """Model config, parameters and GFLOPs of a model: from its train folder (``config.yaml``, and
    ``model_info.json`` when one was saved with ``models info --json``), else from its checkpoint file. The cost is
    counted by :func:`repsep.models.profile.model_info` at the training crop (meta device, no weights)."""
    import dataclasses

    train = entry.train
    ckpt = next((r.checkpoint for r in entry.runs if r.checkpoint is not None and r.checkpoint.is_file()), None)
    if train is not None:
        from repsep.engine.train import load_run_config

        cfg = load_run_config(train.path)
        model_cfg, size = cfg.model, _image_size(cfg.model.img_size, cfg.data.crop)
    elif ckpt is not None:
        from repsep.engine.checkpoint import load_model

        loaded = load_model(ckpt)
        crop = (loaded.train_config.get("data") or {}).get("crop")
        model_cfg, size = loaded.model_config, _image_size(loaded.model_config.img_size, crop)
    else:
        return
    entry.model_config = dataclasses.asdict(model_cfg)
    if train is not None and (train.path / "model_info.json").is_file():
        info = train.json("model_info.json")
    else:
        from repsep.models.profile import model_info

        info = model_info(model_cfg, size or (512, 512))
    try:
        entry.info = {"params": info["params"]["inference"], "gflops": info["gmacs"]["total"],
                      "image_size": info["image_size"]}
    except (KeyError, TypeError):
        raise UserError(f"{train.path if train else ckpt}: model_info.json is not `models info --json` output"
                        ) from None


def gather_models(runs: Sequence[Run]) -> dict[str, ModelEntry]:
    """Group train/eval/corrupt runs by model (in the order first seen) and pick each model's evaluations."""
    models: dict[str, ModelEntry] = {}
    for run in runs:
        if run.kind == "analyze":
            continue
        entry = models.setdefault(run.model, ModelEntry(run.model))
        entry.runs.append(run)
        if run.kind == "eval":
            slot = "eval_ms" if _is_multiscale(run.json("metrics.json")) else "eval_ss"
            if getattr(entry, slot) is not None:
                raise UserError(f"{run.path}: a second {'multi' if slot == 'eval_ms' else 'single'}-scale eval of "
                                f"model {run.model} (the first is {getattr(entry, slot).path}); give one")
            setattr(entry, slot, run)
        elif run.kind == "corrupt":
            if entry.corrupt is not None:
                raise UserError(f"{run.path}: a second corrupt output of model {run.model} "
                                f"(the first is {entry.corrupt.path}); give one")
            entry.corrupt = run
    for entry in models.values():
        _fill_model(entry)
    return models


# ---- tables -----------------------------------------------------------------------------------------------------

def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def main_table(models: dict[str, ModelEntry]) -> Table | None:
    if not models:
        return None
    rows = []
    sizes = ", ".join(sorted({"x".join(map(str, m.info["image_size"])) for m in models.values() if m.info})) or "–"
    for m in models.values():
        params = m.info.get("params")
        ms = m.eval_ms.json("metrics.json") if m.eval_ms else {}
        ss = m.eval_ss.json("metrics.json") if m.eval_ss else {}
        rows.append((m.name, m.model_config.get("backbone"), None if params is None else params / 1e6,
                     _num(m.info.get("gflops")), m.clean_miou(), _num(ms.get("mIoU")),
                     _num(ss.get("fps", ms.get("fps")))))
    return Table("main", "Main results (clean validation set)", (
        Column("model"), Column("backbone"), Column("params (M)", ".2f"), Column("GFLOPs", ".2f"),
        Column("mIoU SS", ".2f"), Column("mIoU MS+flip", ".2f"), Column("FPS", ".1f")), tuple(rows),
        note="params: deployed model (no training-only heads); GFLOPs: multiply-adds, as mmcv/fvcore and most "
        f"papers count them, at the training crop ({sizes}); SS: single-scale; MS+flip: multi-scale with "
        "horizontal flip (when such an eval was given).")


def ablation_table(models: dict[str, ModelEntry]) -> Table | None:
    """baseline -> +pathway -> +SASM -> +DCA per backbone, with the change vs the previous row and the baseline."""
    order = list(LADDER)
    by_backbone: dict[str, list[ModelEntry]] = {}
    for m in models.values():
        if m.switches is not None and m.clean_miou() is not None:
            by_backbone.setdefault(str(m.model_config.get("backbone")), []).append(m)
    rows = []
    for backbone, entries in by_backbone.items():
        if len(entries) < 2:
            continue
        entries.sort(key=lambda m: (order.index(m.switches) if m.switches in order else len(order), sum(m.switches)))
        base = entries[0].clean_miou() if entries[0].switches == order[0] else None
        prev = None
        for m in entries:
            miou = m.clean_miou()
            rows.append((backbone, m.step, m.name, *("✓" if on else None for on in m.switches), m.iterations(),
                         miou, None if prev is None else miou - prev, None if base is None else miou - base))
            prev = miou
    if not rows:
        return None
    return Table("ablation", "Ablation: baseline -> +pathway -> +SASM -> +DCA", (
        Column("backbone"), Column("step"), Column("model"), Column("pathway"), Column("SASM"), Column("DCA"),
        Column("iterations"), Column("mIoU", ".2f"), Column("Δ prev", "+.2f"),
        Column("Δ baseline", "+.2f")), tuple(rows), note="Single-scale clean mIoU (%); rows ordered by the model "
        "config switches pathway/sasm/dca; iterations: training length (when the train folder was given); rows "
        "trained for different lengths are not equal-compute comparisons.")


def _corruption_order(results: dict[str, dict[str, Any]]) -> list[str]:
    present = {c for r in results.values() for c in r.get("per_corruption", {})}
    ordered = [c for names in GROUPS.values() for c in names if c in present]
    return ordered + sorted(present - set(ordered), key=lambda c: (list(GROUPS).index(group_of(c)), c))


def robustness_tables(results: dict[str, dict[str, Any]]) -> list[Table]:
    """Per-corruption table (paper style, grouped columns) and per-group table, one row per model."""
    corruptions = _corruption_order(results)
    groups = list(dict.fromkeys(group_of(c) for c in corruptions))
    has_mce = any(r.get("mCE") is not None for r in results.values())
    cols = [Column("model"), Column("clean", ".1f")]
    cols += [Column(c, ".1f", group_of(c)) for c in corruptions]
    cols += [Column("mPC", ".1f"), Column("rPC (%)", ".1f")] + ([Column("mCE (%)", ".1f")] if has_mce else [])
    rows, group_rows = [], []
    for name, r in results.items():
        per_c, per_g = r.get("per_corruption", {}), r.get("per_group", {})
        tail = [_num(r.get("mPC")), _num(r.get("rPC"))] + ([_num(r.get("mCE"))] if has_mce else [])
        rows.append((name, _num(r.get("clean")), *(_num(per_c.get(c)) for c in corruptions), *tail))
        group_rows.append((name, _num(r.get("clean")), *(_num(per_g.get(g)) for g in groups), _num(r.get("mPC"))))
    note = "mPC: mean over all corruption x severity cells; rPC = mPC / clean" + (
        "; mCE against the reference given to `corrupt --reference-results`." if has_mce else ".")
    per_corruption = Table("robustness", "Robustness: mIoU per corruption (mean over severities)", tuple(cols),
                           tuple(rows), note=note)
    per_group = Table("robustness_groups", "Robustness by corruption group",
                      (Column("model"), Column("clean", ".1f"), *(Column(g, ".1f") for g in groups),
                       Column("mPC", ".1f")), tuple(group_rows))
    return [per_corruption, per_group]


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise UserError(f"{path}: empty CSV")
    return rows[0], rows[1:]


def _cell_value(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


def _stacked_csv(stem: str, title: str, files: list[Path]) -> Table | None:
    """Rows of several CSVs with a ``model`` column (the analyze per-layer tables), columns in first-seen order."""
    header: list[str] = []
    rows: list[dict[str, str]] = []
    for file in files:
        cols, body = _read_csv(file)
        header += [c for c in cols if c not in header]
        rows += [dict(zip(cols, r, strict=False)) for r in body]
    if not rows:
        return None
    return Table(stem, title, tuple(Column(c, ".4g") for c in header),
                 tuple(tuple(_cell_value(r[c]) if r.get(c, "") != "" else None for c in header) for r in rows))


def analysis_tables(runs: Sequence[Run]) -> list[Table]:
    """Per analyze folder, the similarity and separation metrics at its summary layer (one row per model, as
    ``analyze`` prints them); then every layer of every folder, stacked."""
    from analysis.run import summary_tables

    tables = []
    for k, run in enumerate(runs):
        sim, sep = run.json("similarity.json"), run.json("separation.json")
        try:
            layer = sim["settings"]["summary_layer"]
            means = {n: {lay: {m: v["mean"] for m, v in d.items() if isinstance(v, dict)} for lay, d in per.items()}
                     for n, per in sim["models"].items()}
            summary = summary_tables(means, sep["models"], run.models, layer)
        except (KeyError, TypeError) as e:
            raise UserError(f"{run.path}: similarity.json / separation.json lack {e} (not analyze outputs?)") from None
        suffix = "" if len(runs) == 1 else f"_{k + 1}"
        tables += [Table(t.stem + suffix, t.title + ("" if len(runs) == 1 else f" ({run.path.name})"), t.columns,
                         t.rows, t.note) for t in summary]
    for stem, title in (("similarity", "Over-smoothness by layer: feature similarity"),
                        ("separation", "Class separation by layer")):
        table = _stacked_csv(f"{stem}_layers", title, [r.path / f"{stem}.csv" for r in runs
                                                        if (r.path / f"{stem}.csv").is_file()])
        if table is not None:
            tables.append(table)
    return tables


# ---- bootstrap --------------------------------------------------------------------------------------------------

def _npz(path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read per-image areas ({e})") from None


def _areas(data: Any, prefix: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        return data[f"{prefix}intersect"], data[f"{prefix}union"]
    except KeyError:
        raise UserError(f"{path}: no per-image '{prefix}intersect'/'{prefix}union' arrays") from None


def _ids(data: Any, path: Path) -> np.ndarray:
    if "ids" not in data:
        raise UserError(f"{path}: no 'ids' array")
    return data["ids"]


def _severity_keys(data: Any) -> dict[str, list[str]]:
    """{corruption: [severity, ...]} from the keys ``<corruption>/<severity>/intersect`` of a corrupt npz."""
    cells: dict[str, list[str]] = {}
    for key in data.files:
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "intersect" and parts[0] != "clean":
            cells.setdefault(parts[0], []).append(parts[1])
    return {c: sorted(s, key=int) for c, s in cells.items()}


def bootstrap_comparisons(models: dict[str, ModelEntry], baseline: str | None, *, resamples: int, seed: int,
                          confidence: float = 0.95) -> dict[str, dict[str, Interval]]:
    """{model: {setting: interval of mIoU(model) - mIoU(baseline)}}, settings ``clean`` and each group."""
    from tqdm import tqdm

    if baseline is None:
        return {}
    base = models[baseline]
    out: dict[str, dict[str, Interval]] = {}
    others = [m for m in models.values() if m.name != baseline]
    for m in tqdm(others, desc="bootstrap", unit="model", disable=None):
        res: dict[str, Interval] = {}
        if m.eval_ss and base.eval_ss:
            pa, pb = base.eval_ss.path / "per_image.npz", m.eval_ss.path / "per_image.npz"
            prefix = ""
        elif m.corrupt and base.corrupt:
            pa, pb = base.corrupt.path / "per_image.npz", m.corrupt.path / "per_image.npz"
            prefix = "clean/"
        else:
            pa = pb = None
        if pa is not None and pa.is_file() and pb.is_file():
            da, db = _npz(pa), _npz(pb)
            oa, ob = match_ids(_ids(da, pa), _ids(db, pb), str(pa), str(pb))
            (ia, ua), (ib, ub) = _areas(da, prefix, pa), _areas(db, prefix, pb)
            res["clean"] = paired_difference([(ia[oa], ua[oa])], [(ib[ob], ub[ob])], resamples=resamples,
                                             seed=seed, confidence=confidence)
        if m.corrupt and base.corrupt:
            pa, pb = base.corrupt.path / "per_image.npz", m.corrupt.path / "per_image.npz"
            if pa.is_file() and pb.is_file():
                res.update(_group_intervals(pa, pb, resamples=resamples, seed=seed, confidence=confidence))
        out[m.name] = res
    return out


def _group_intervals(pa: Path, pb: Path, *, resamples: int, seed: int, confidence: float) -> dict[str, Interval]:
    da, db = _npz(pa), _npz(pb)
    oa, ob = match_ids(_ids(da, pa), _ids(db, pb), str(pa), str(pb))
    ka, kb = _severity_keys(da), _severity_keys(db)
    common = {c: [s for s in ka[c] if s in kb.get(c, [])] for c in ka if c in kb}
    by_group: dict[str, list[str]] = {}
    for c in _corruption_order({"_": {"per_corruption": common}}):
        by_group.setdefault(group_of(c), []).append(f"{c}/")
    out = {}
    for group, prefixes in by_group.items():
        cells_a, cells_b = [], []
        for p in prefixes:
            for s in common[p[:-1]]:
                (ia, ua), (ib, ub) = _areas(da, f"{p}{s}/", pa), _areas(db, f"{p}{s}/", pb)
                cells_a.append((ia[oa], ua[oa]))
                cells_b.append((ib[ob], ub[ob]))
        out[group] = paired_difference(cells_a, cells_b, resamples=resamples, seed=seed, confidence=confidence)
    return out


def uncertainty_table(intervals: dict[str, dict[str, Interval]], baseline: str, confidence: float) -> Table | None:
    rows = tuple((name, baseline, setting, iv.estimate, iv.low, iv.high)
                 for name, per in intervals.items() for setting, iv in per.items())
    if not rows:
        return None
    pct = f"{100 * confidence:g}%"
    return Table("uncertainty", f"Paired bootstrap: mIoU difference vs {baseline} ({pct} interval)", (
        Column("model"), Column("baseline"), Column("setting"), Column("Δ mIoU", "+.2f"),
        Column(f"{pct} low", "+.2f"), Column(f"{pct} high", "+.2f")), rows,
        note=f"Images resampled with replacement ({next(iter(next(iter(intervals.values())).values())).resamples} "
        "resamples, the same draws for both models and every corruption x severity cell); dataset-level mIoU "
        "recomputed from summed per-image intersections and unions; a group's mIoU is the mean over its cells.")


# ---- figures ----------------------------------------------------------------------------------------------------

FIGURE_CAPTIONS = {"val_miou": "val mIoU vs training iteration", "robustness_severity": "mIoU vs severity"}


def training_curves(models: dict[str, ModelEntry]) -> tuple[dict[str, list[tuple[int, float]]], dict[str, int]]:
    """Validation curve and iteration count of every model given with its train folder."""
    curves, iters = {}, {}
    for m in models.values():
        if m.train is not None and (m.train.path / "metrics.jsonl").is_file():
            curves[m.name] = val_curve(m.train.path / "metrics.jsonl")
            iters[m.name] = m.iterations()
    return curves, iters


def severity_figure(results: dict[str, dict[str, Any]], out_dir: Path) -> list[Path]:
    corruptions = _corruption_order(results)
    severities = sorted({int(s) for r in results.values() for cells in r.get("cells", {}).values() for s in cells})
    curves = {}
    for name, r in results.items():
        cells = {c: {int(s): v for s, v in per.items()} for c, per in r.get("cells", {}).items()}
        curves[name] = {g: severity_curve(cells, float(r["clean"]), [c for c in corruptions if group_of(c) == g],
                                          severities)
                        for g in dict.fromkeys(group_of(c) for c in corruptions)}
    fig = plot_severity(curves, severities, "mIoU vs corruption severity (mean over each group's corruptions)")
    return save_figure(fig, out_dir / "robustness_severity")


def copy_analysis_figures(runs: Sequence[Run], out_dir: Path) -> list[tuple[str, Path, str]]:
    """Copy every analyze figure (PNG/PDF) and caption into ``out_dir/<folder name>``; returns (models, png path,
    caption) for the README."""
    shown, used = [], set()
    for run in runs:
        fig_dir = run.path / "figures"
        if not fig_dir.is_dir():
            continue
        name, k = run.path.resolve().name, 2
        while name in used:
            name, k = f"{run.path.resolve().name}-{k}", k + 1
        used.add(name)
        for src in sorted(fig_dir.iterdir()):
            if src.suffix in (".png", ".pdf", ".txt") and src.is_file():
                atomic_write_bytes(out_dir / name / src.name, src.read_bytes())
                if src.suffix == ".png":
                    cap = src.with_suffix(".txt")
                    caption = cap.read_text(encoding="utf-8").strip() if cap.is_file() else src.stem
                    shown.append((run.model, out_dir / name / src.name, caption))
    return shown


# ---- the report -------------------------------------------------------------------------------------------------

def default_baseline(models: dict[str, ModelEntry]) -> str | None:
    """The model with no separation component when there is exactly one, else the first model given."""
    if not models:
        return None
    plain = [m.name for m in models.values() if m.switches == (False, False, False)]
    return plain[0] if len(plain) == 1 else next(iter(models))


def _input_record(run: Run) -> dict[str, Any]:
    man = run.manifest
    record = {"kind": run.kind, "path": str(run.path), "model": run.model,
              "checkpoint": None if run.checkpoint is None else str(run.checkpoint),
              "files": {f: sha256_file(run.path / f) for f in HASHED_FILES if (run.path / f).is_file()}}
    for key in ("command", "config_hash", "git_commit", "seeds", "device", "packages", "inputs"):
        record[key] = man.get(key)
    record.update({k: v for k, v in man.items() if "dataset" in k})
    return record


def _table_records(table: Table) -> dict[str, Any]:
    return {"title": table.title, "columns": [c.name if not c.group else f"{c.group}/{c.name}"
                                              for c in table.columns], "rows": [list(r) for r in table.rows]}


@dataclass
class ReportResult:
    out: Path
    tables: list[Table]
    baseline: str | None


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` onto ``out``; an existing ``out`` is moved aside first and removed after."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old)


def build_report(run_dirs: Sequence[str | Path], out: str | Path, *, baseline: str | None = None, seed: int = 0,
                 resamples: int = 1000, confidence: float = 0.95, overwrite: bool = False) -> ReportResult:
    """Read the runs, compute the tables and bootstrap intervals, write the report folder atomically."""
    out = Path(out)
    if not run_dirs:
        raise UserError("report: give at least one train/eval/corrupt/analyze output folder")
    if out.exists() and not overwrite:
        raise UserError(f"--out {out}: already exists; pass --overwrite to replace it")
    if resamples < 1:
        raise UserError(f"--resamples {resamples}: must be at least 1")
    runs = [read_run(p) for p in run_dirs]
    models = gather_models(runs)
    analyze_runs = [r for r in runs if r.kind == "analyze"]
    if baseline is not None and baseline not in models:
        raise UserError(f"--baseline {baseline}: no such model; the models are: {', '.join(models)}")
    baseline = baseline or default_baseline(models)

    results = {m.name: m.corrupt.json("robustness.json") for m in models.values() if m.corrupt}
    curves, iters = training_curves(models)
    intervals = bootstrap_comparisons(models, baseline, resamples=resamples, seed=seed, confidence=confidence)
    tables = [main_table(models), ablation_table(models), convergence_table(curves, iters),
              *(robustness_tables(results) if results else []),
              uncertainty_table(intervals, baseline, confidence), *analysis_tables(analyze_runs)]
    tables = [t for t in tables if t is not None]

    tmp = temp_sibling_dir(out)
    try:
        os.chmod(tmp, 0o755)
        for t in tables:
            atomic_write_text(tmp / "tables" / f"{t.stem}.csv", to_csv(t))
            atomic_write_text(tmp / "tables" / f"{t.stem}.tex", to_latex(t))
        figures = curve_figure(curves, tmp / "figures") + (severity_figure(results, tmp / "figures") if results else [])
        analysis_figs = copy_analysis_figures(analyze_runs, tmp / "figures" / "analyze")
        atomic_write_json(tmp / "report.json", {
            "baseline": baseline, "seed": seed, "resamples": resamples, "confidence": confidence,
            "tables": {t.stem: _table_records(t) for t in tables},
            "bootstrap": {name: {s: iv.to_dict() for s, iv in per.items()} for name, per in intervals.items()}})
        atomic_write_text(tmp / "README.md", _readme(tables, runs, models, baseline, seed, resamples,
                                                     [p.relative_to(tmp) for p in figures],
                                                     [(n, p.relative_to(tmp), c) for n, p, c in analysis_figs]))
        settings = {"baseline": baseline, "seed": seed, "resamples": resamples, "confidence": confidence}
        manifest = build_manifest("report", seeds={"bootstrap": seed}, config=settings,
                                  inputs={str(r.path): _input_record(r) for r in runs})
        manifest["settings"] = settings
        manifest["datasets"] = sorted({str(d) for r in runs for k in ("dataset", "data")
                                       if (d := (r.manifest.get("inputs") or {}).get(k)) is not None})
        atomic_write_json(tmp / "manifest.json", manifest)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportResult(out, tables, baseline)


def _readme(tables: list[Table], runs: list[Run], models: dict[str, ModelEntry], baseline: str | None, seed: int,
            resamples: int, figures: list[Path], analysis_figs: list[tuple[str, Path, str]]) -> str:
    parts = ["# repsep-bench report", ""]
    if models:
        parts += [f"Models: {', '.join(models)}. Baseline for the paired comparisons: `{baseline}`.", ""]
    datasets = sorted({str(d) for r in runs if r.kind in ("eval", "corrupt")
                       if (d := r.json(RESULT_FILES[r.kind][0]).get("dataset")) is not None})
    if datasets:
        parts += [f"Dataset: {', '.join(datasets)}.", ""]
    parts += ["## Tables", "", "Each table is also in `tables/<name>.csv` (full precision) and `tables/<name>.tex` "
              "(LaTeX booktabs); every number is in `report.json`.", ""]
    for t in tables:
        parts.append(to_markdown(t))
    if figures or analysis_figs:
        parts += ["## Figures", ""]
    for p in figures:
        if p.suffix == ".png":
            alt = FIGURE_CAPTIONS.get(p.stem, p.stem)
            parts += [f"![{alt}]({p.as_posix()}) ([PDF]({p.with_suffix('.pdf').as_posix()}))", ""]
    for name, p, caption in analysis_figs:
        parts += [f"**{name}** — {caption}", "", f"![{p.stem}]({p.as_posix()})", ""]
    parts += ["## How it was made", "",
              f"`repsep-bench report` with bootstrap seed {seed} and {resamples} resamples, from these inputs "
              "(provenance, hashes and package versions in `manifest.json`):", "",
              "| model | kind | folder | command |", "|:---|:---|:---|:---|"]
    for r in runs:
        parts.append(f"| {r.model} | {r.kind} | `{r.path}` | `{r.manifest.get('command', '–')}` |")
    return "\n".join(parts) + "\n"

