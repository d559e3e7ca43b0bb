"""Tables of ``analyze`` folders: similarity and separation at the summary layer, and every layer stacked."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from analysis.report.common import dataset_note
from analysis.report.reader import Run
from analysis.tables import Column, Table
from repsep.errors import UserError


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


def _stacked_csv(stem: str, title: str, files: list[Path], note: str) -> Table | None:
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
                 tuple(tuple(_cell_value(r[c]) if r.get(c, "") != "" else None for c in header) for r in rows),
                 note=note)


def analysis_tables(runs: Sequence[Run]) -> list[Table]:
    """Per analyze folder, the similarity and separation metrics at its summary layer (one row per model, as
    ``analyze`` prints them); then every layer of every folder, stacked. Each table names its own dataset."""
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
                         t.rows, dataset_note([run]) + t.note) for t in summary]
    for stem, title in (("similarity", "Over-smoothness by layer: feature similarity"),
                        ("separation", "Class separation by layer")):
        with_csv = [r for r in runs if (r.path / f"{stem}.csv").is_file()]
        table = _stacked_csv(f"{stem}_layers", title, [r.path / f"{stem}.csv" for r in with_csv],
                             dataset_note(with_csv).strip())
        if table is not None:
            tables.append(table)
    return tables
