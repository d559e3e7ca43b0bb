"""``repsep-bench report``: combine train / eval / corrupt / analyze output folders into one reproducible report.

The report folder holds ``README.md`` (tables, figure links, how it was made), ``tables/<name>.{csv,tex}``,
``figures/*.{png,pdf}``, ``report.json`` (every number, for programs) and ``manifest.json`` (provenance of the
inputs). Modules, one job each: :mod:`~analysis.report.reader` (folders -> typed records, model identity,
comparability checks), :mod:`~analysis.report.costs` (params / GMACs), ``tables_main`` / ``tables_robustness`` /
``uncertainty`` / ``tables_analysis`` (one table family each), :mod:`~analysis.report.figures`,
:mod:`~analysis.report.writers` (CSV, LaTeX, Markdown, JSON) and :mod:`~analysis.report.build`.
"""

from analysis.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
