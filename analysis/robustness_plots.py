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


def save_figure(fig, stem: str | Path) -> list[Path]:
    """Write ``<stem>.png`` (150 dpi) and ``<stem>.pdf`` atomically with fixed metadata; closes the figure."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    atomic_save(paths[0], lambda f: fig.savefig(f, format="png", dpi=150, metadata=PNG_METADATA))
    atomic_save(paths[1], lambda f: fig.savefig(f, format="pdf", metadata=PDF_METADATA))
    plt.close(fig)
    return paths
