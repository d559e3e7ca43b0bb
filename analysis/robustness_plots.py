"""Paper-style robustness figures: mIoU against corruption severity, one panel per group, one line per model.

Figures are drawn with the Agg backend and saved with fixed metadata (no creation date, no software string), so
the same numbers give the same PNG/PDF bytes with the same matplotlib version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from repsep.io import atomic_save

PNG_METADATA = {"Software": None}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}


def severity_curve(cells: Mapping[str, Mapping[int, float]], clean: float, corruptions: Sequence[str],
                   severities: Sequence[int]) -> np.ndarray:
    """mIoU at severity 0 (clean) and each severity, averaged over ``corruptions``: float [1 + len(severities)].

    A (corruption, severity) cell that was not run is skipped in the mean (NaN when no corruption has it).
    """
    values = [clean]
    for s in severities:
        got = [cells[c][s] for c in corruptions if c in cells and s in cells[c] and cells[c][s] is not None]
        values.append(float(np.mean(got)) if got else float("nan"))
    return np.asarray(values, dtype=np.float64)


def plot_severity(curves: Mapping[str, Mapping[str, np.ndarray]], severities: Sequence[int], title: str):
    """A figure with one panel per group (keys of the inner mapping) and one line per model (outer keys).

    ``curves[model][group]`` is mIoU at ``[0, *severities]`` (severity 0 = clean).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figures import FONT

    plt.rcParams.update(FONT)  # the same style as the analyze figures, whatever was drawn before
    groups = list(dict.fromkeys(g for per_group in curves.values() for g in per_group))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.0 * len(groups), 2.8), sharey=True, squeeze=False)
    x = [0, *severities]
    markers = "osD^vP*X"
    for ax, group in zip(axes[0], groups, strict=True):
        for k, (model, per_group) in enumerate(curves.items()):
            if group in per_group:
                ax.plot(x, per_group[group], marker=markers[k % len(markers)], markersize=4, label=model)
        ax.set_title(group)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mIoU (%)")
    axes[0][-1].legend(fontsize="small", frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_shift_bars(values: Mapping[str, Mapping[str, float | None]], title: str):
    """Grouped bars, one group per model: left panel mIoU (clean, mPC, natural-shift mean), right panel percent of
    clean (rPC, natural shift). ``values[model]`` has the keys of
    :func:`analysis.report.tables_shift.shift_summary`; a missing value draws no bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figures import FONT

    plt.rcParams.update(FONT)
    panels = (("mIoU (%)", (("shift_clean", "clean"), ("mPC", "synthetic corruptions (mPC)"),
                            ("shift_mean", "natural shift (mean)"))),
              ("% of clean", (("rPC", "synthetic corruptions (rPC)"), ("shift_ratio", "natural shift"))))
    models = list(values)
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.6 * len(models) + 3.0), 3.0), squeeze=False)
    x = np.arange(len(models), dtype=np.float64)
    colours = {"shift_clean": "#9e9e9e", "mPC": "#1f77b4", "rPC": "#1f77b4", "shift_mean": "#d62728",
               "shift_ratio": "#d62728"}
    for ax, (ylabel, bars) in zip(axes[0], panels, strict=True):
        width = 0.8 / len(bars)
        for k, (key, label) in enumerate(bars):
            heights = [values[m].get(key) for m in models]
            shown = [(xi, h) for xi, h in zip(x, heights, strict=True) if h is not None and np.isfinite(h)]
            if shown:
                ax.bar([xi + (k - (len(bars) - 1) / 2) * width for xi, _ in shown], [h for _, h in shown], width,
                       label=label, color=colours[key])
        top = max((h for m in models for key, _ in bars if (h := values[m].get(key)) is not None and np.isfinite(h)),
                  default=1.0)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_ylim(0.0, 1.35 * top if top > 0 else 1.0)  # room for the legend above the bars
        ax.set_xticks(x)
        ax.set_xticklabels(models, rotation=20, ha="right")
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small", frameon=False, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(fig, stem: str | Path) -> list[Path]:
    """Write ``<stem>.png`` (150 dpi) and ``<stem>.pdf`` atomically with fixed metadata; closes the figure."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    atomic_save(paths[0], lambda f: fig.savefig(f, format="png", dpi=150, metadata=PNG_METADATA))
    atomic_save(paths[1], lambda f: fig.savefig(f, format="pdf", metadata=PDF_METADATA))
    plt.close(fig)
    return paths
