"""Compare a freshly generated report with a committed one and print every number that differs.

    python scripts/compare_reports.py reports/synthcity_demo demo/report [--tol 0]

Reads ``report.json`` (every number in it, at full precision) and every ``tables/*.csv`` of both folders, and
prints one line per differing value: the file, where in it (JSON path, or CSV row/column), the committed value,
the fresh value and their difference. Files present in only one folder are listed too. Ends with a summary line;
exit code 0 when nothing differs beyond ``--tol`` (absolute), 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def flatten_json(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs of a JSON value; paths like ``tables.main.rows[1][4]``."""
    if isinstance(obj, dict):
        for key in sorted(obj):
            yield from flatten_json(obj[key], f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from flatten_json(item, f"{path}[{i}]")
    else:
        yield path, obj


def flatten_csv(path: Path) -> Iterator[tuple[str, Any]]:
    """(``row R (first cell) / column``, cell) pairs of a CSV with a header row."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header = rows[0]
    for r, row in enumerate(rows[1:], start=1):
        label = row[0] if row else ""
        for c, cell in enumerate(row):
            column = header[c] if c < len(header) else f"#{c}"
            yield f"row {r} ({label}) / {column}", cell


def _same(a: Any, b: Any, tol: float) -> bool:
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return abs(x - y) <= tol
    return a == b


def compare_leaves(name: str, committed: dict[str, Any], fresh: dict[str, Any], tol: float) -> list[str]:
    """One line per leaf that differs (or exists on one side only)."""
    lines = []
    for key in sorted(set(committed) | set(fresh)):
        if key not in fresh:
            lines.append(f"{name}: {key}: {committed[key]!r} -> (missing)")
        elif key not in committed:
            lines.append(f"{name}: {key}: (missing) -> {fresh[key]!r}")
        elif not _same(committed[key], fresh[key], tol):
            a, b = committed[key], fresh[key]
            x, y = _number(a), _number(b)
            delta = f"  (diff {y - x:+.6g})" if x is not None and y is not None else ""
            lines.append(f"{name}: {key}: {a!r} -> {b!r}{delta}")
    return lines


def compare_reports(committed: Path, fresh: Path, tol: float = 0.0) -> tuple[list[str], int]:
    """(difference lines, number of values compared) between two report folders."""
    for folder in (committed, fresh):
        if not (folder / "report.json").is_file():
            raise ValueError(f"{folder}: not a report folder (no report.json)")
    lines: list[str] = []
    compared = 0
    a = dict(flatten_json(json.loads((committed / "report.json").read_text(encoding="utf-8"))))
    b = dict(flatten_json(json.loads((fresh / "report.json").read_text(encoding="utf-8"))))
    compared += len(set(a) | set(b))
    lines += compare_leaves("report.json", a, b, tol)
    tables_a = {p.name for p in (committed / "tables").glob("*.csv")}
    tables_b = {p.name for p in (fresh / "tables").glob("*.csv")}
    for name in sorted(tables_a | tables_b):
        if name not in tables_b or name not in tables_a:
            lines.append(f"tables/{name}: only in {committed if name in tables_a else fresh}")
            continue
        a = dict(flatten_csv(committed / "tables" / name))
        b = dict(flatten_csv(fresh / "tables" / name))
        compared += len(set(a) | set(b))
        lines += compare_leaves(f"tables/{name}", a, b, tol)
    return lines, compared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("committed", type=Path, help="The committed report folder, e.g. reports/synthcity_demo.")
    parser.add_argument("fresh", type=Path, help="The freshly generated report folder, e.g. demo/report.")
    parser.add_argument("--tol", type=float, default=0.0, help="Absolute tolerance for numbers (default 0: exact).")
    args = parser.parse_args(argv)
    try:
        lines, compared = compare_reports(args.committed, args.fresh, args.tol)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print(f"{len(lines)} of {compared} values differ (tolerance {args.tol:g}) between {args.committed} and "
          f"{args.fresh}")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
