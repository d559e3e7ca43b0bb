"""Writers of the report folder: tables as CSV and LaTeX, ``README.md`` (Markdown), ``report.json`` and
``manifest.json``; all into the staging :class:`~repsep.ownership.OwnedFolder`, every file recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.bootstrap import Interval
from analysis.report.figures import FIGURE_CAPTIONS
from analysis.report.reader import ModelEntry, Run
from analysis.seed_bootstrap import SeedInterval
from analysis.tables import Table, to_csv, to_latex, to_markdown
from repsep.manifest import build_manifest, sha256_file
from repsep.ownership import OwnedFolder

HASHED_FILES = ("config.yaml", "metrics.json", "metrics.jsonl", "robustness.json", "shift.json", "per_image.npz",
                "similarity.json", "separation.json", "model_info.json")


def write_tables(folder: OwnedFolder, tables: list[Table]) -> None:
    for t in tables:
        folder.write_text(f"tables/{t.stem}.csv", to_csv(t))
        folder.write_text(f"tables/{t.stem}.tex", to_latex(t))


def _table_records(table: Table) -> dict[str, Any]:
    return {"title": table.title, "note": table.note,
            "columns": [c.name if not c.group else f"{c.group}/{c.name}" for c in table.columns],
            "rows": [list(r) for r in table.rows]}


def write_report_json(folder: OwnedFolder, settings: dict[str, Any], tables: list[Table],
                      intervals: dict[str, dict[str, SeedInterval]], warnings: list[str],
                      shift_intervals: dict[str, dict[str, Interval]] | None = None) -> None:
    record = {**settings, "warnings": warnings, "tables": {t.stem: _table_records(t) for t in tables},
              "bootstrap": {name: {s: iv.to_dict() for s, iv in per.items()} for name, per in intervals.items()}}
    if shift_intervals:
        record["bootstrap_shift"] = {name: {s: iv.to_dict() for s, iv in per.items()}
                                     for name, per in shift_intervals.items()}
    folder.write_json("report.json", record)


def _input_record(run: Run) -> dict[str, Any]:
    man = run.manifest
    record = {"kind": run.kind, "path": str(run.path), "model": run.model, "model_key": run.key or None,
              "checkpoint": None if run.checkpoint is None else str(run.checkpoint), "settings": run.settings,
              "files": {f: sha256_file(run.path / f) for f in HASHED_FILES if (run.path / f).is_file()}}
    for key in ("command", "config_hash", "git_commit", "seeds", "device", "packages", "inputs"):
        record[key] = man.get(key)
    record.update({k: v for k, v in man.items() if "dataset" in k})
    return record


def write_manifest(folder: OwnedFolder, runs: list[Run], settings: dict[str, Any]) -> None:
    manifest = build_manifest("report", seeds={"bootstrap": settings["seed"]}, config=settings,
                              inputs={str(r.path): _input_record(r) for r in runs})
    manifest["settings"] = settings
    manifest["datasets"] = sorted({str(d) for r in runs for k in ("dataset", "data")
                                   if (d := (r.manifest.get("inputs") or {}).get(k)) is not None}
                                  | {str(r.settings["dataset"]) for r in runs
                                     if r.settings and r.settings.get("dataset") is not None})
    folder.write_json("manifest.json", manifest)


def readme(tables: list[Table], runs: list[Run], models: dict[str, ModelEntry], baseline: str | None, seed: int,
           resamples: int, figures: list[Path], analysis_figs: list[tuple[str, Path, str]],
           warnings: list[str]) -> str:
    """``README.md``: models, the mismatch warning block (with ``--allow-mismatch``), tables (each naming its
    dataset), figures and how the report was made."""
    parts = ["# repsep-bench report", ""]
    if models:
        parts += [f"Models: {', '.join(models)}. Baseline for the paired comparisons: `{baseline}`.", ""]
    if warnings:
        parts += ["> **Warning: these results are not comparable.** They differ in the settings below and were "
                  "combined only because `--allow-mismatch` was given:", ">"]
        parts += [f"> - {w}" for w in warnings] + [""]
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
