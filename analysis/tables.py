"""Result tables and their writers: Markdown (for people), CSV (full precision, for programs), LaTeX (booktabs).

A :class:`Table` holds raw values (str, int, float or None); each writer formats them. Missing values (None or
NaN) print as an en dash in Markdown/LaTeX and as an empty field in CSV; :data:`UNDEFINED` marks a value that was
computed but is undefined (an mIoU over no labelled pixel, a CE against a perfect reference) and prints as the
word. Output is a pure function of the values, so regenerated tables are byte-identical.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

Value = str | int | float | None
UNDEFINED = "undefined"
"""Cell value of a number that exists but is undefined (the table's note says why); not missing, not a number."""


@dataclass(frozen=True)
class Column:
    """One column: ``name`` (header), ``fmt`` (format spec for numbers, e.g. ``".1f"``), ``group`` (a header
    spanning neighbouring columns, e.g. the corruption group)."""

    name: str
    fmt: str = ""
    group: str = ""


@dataclass(frozen=True)
class Table:
    """A titled table; ``stem`` names its files (``<stem>.csv``, ``<stem>.tex``)."""

    stem: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]
    note: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.stem}: row {row} has {len(row)} values for {len(self.columns)} columns")


def _missing(value: Value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(value: Value, fmt: str = "") -> str:
    """Human formatting of one cell; missing values become an en dash."""
    if _missing(value):
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and fmt:
        if fmt.endswith("d") and isinstance(value, float) and value.is_integer():
            value = int(value)  # an integer that went through JSON/CSV as a float
        return format(value, fmt)
    return str(value)


def _numeric(table: Table, j: int) -> bool:
    values = [row[j] for row in table.rows if not _missing(row[j]) and row[j] != UNDEFINED]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _spans(columns: tuple[Column, ...]) -> list[tuple[str, int, int]]:
    """Runs of equal ``group``: (group, first index, last index)."""
    spans: list[tuple[str, int, int]] = []
    for j, col in enumerate(columns):
        if spans and spans[-1][0] == col.group:
            spans[-1] = (col.group, spans[-1][1], j)
        else:
            spans.append((col.group, j, j))
    return spans


def to_csv(table: Table) -> str:
    """CSV with a header row of column names (``group/name`` for grouped columns) and full-precision numbers."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([f"{c.group}/{c.name}" if c.group else c.name for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if _missing(v) else repr(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def to_markdown(table: Table, heading_level: int = 3) -> str:
    """A Markdown section: heading, optional column-group line, pipe table, optional note."""
    lines = [f"{'#' * heading_level} {table.title}", ""]
    groups = [(g, a, b) for g, a, b in _spans(table.columns) if g]
    if groups:
        lines += ["Column groups: " + "; ".join(
            f"**{g}**: {', '.join(c.name for c in table.columns[a:b + 1])}" for g, a, b in groups), ""]
    lines.append("| " + " | ".join(c.name for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if _numeric(table, j) else ":---" for j in range(len(table.columns))) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(format_value(v, c.fmt) for v, c in zip(row, table.columns, strict=True)) + " |")
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--",
                  "Δ": r"$\Delta$", "±": r"$\pm$", "✓": r"\checkmark"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A booktabs ``tabular`` (to ``\\input`` inside your own ``table`` environment), grouped headers spanned."""
    align = "".join("r" if _numeric(table, j) else "l" for j in range(len(table.columns)))
    lines = [f"% {latex_escape(table.title)}", f"\\begin{{tabular}}{{{align}}}", r"\toprule"]
    spans = _spans(table.columns)
    if any(g for g, _, _ in spans):
        cells = [f"\\multicolumn{{{b - a + 1}}}{{c}}{{{latex_escape(g)}}}" if g else " & ".join([""] * (b - a + 1))
                 for g, a, b in spans]
        lines.append(" & ".join(cells) + r" \\")
        lines.append(" ".join(f"\\cmidrule(lr){{{a + 1}-{b + 1}}}" for g, a, b in spans if g))
    lines.append(" & ".join(latex_escape(c.name) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    for row in table.rows:
        cells = (latex_escape(format_value(v, c.fmt)) for v, c in zip(row, table.columns, strict=True))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
