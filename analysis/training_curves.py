"""Validation curves of training runs: the convergence table (is val mIoU flat over the last fifth?) and a figure.

A training run validates every ``schedule.val_interval`` iterations and appends ``{"event": "val", "iter": i,
"mIoU": m}`` lines to ``metrics.jsonl`` (a resumed run may repeat an iteration: the last line wins).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from analysis.robustness_plots import save_figure
from analysis.tables import Column, Table
from repsep.errors import UserError

LAST_FRACTION = 0.2  # "the last fifth of training"
PLATEAU_POINTS = 1.0  # mIoU points: a smaller change over the last fifth counts as converged


def val_curve(metrics_jsonl: Path) -> list[tuple[int, float]]:
    """(iteration, val mIoU %) pairs of a run's ``metrics.jsonl``, sorted by iteration; [] when it never validated."""
    curve: dict[int, float] = {}
    try:
        lines = metrics_jsonl.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UserError(f"{metrics_jsonl}: cannot read ({e.strerror})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{metrics_jsonl}:{n}: not a JSON line") from None
        if isinstance(record, dict) and record.get("event") == "val" and "mIoU" in record:
            curve[int(record["iter"])] = float(record["mIoU"])
    return sorted(curve.items())


def last_fifth_change(curve: list[tuple[int, float]], iters: int) -> tuple[int, float] | None:
    """(start iteration, mIoU change) from the last validation at or before ``(1 - LAST_FRACTION) * iters`` to the
    final one; None when the curve has no point that early or none after it."""
    start = [(i, m) for i, m in curve if i <= (1 - LAST_FRACTION) * iters]
    if not start or curve[-1][0] <= start[-1][0]:
        return None
    return start[-1][0], curve[-1][1] - start[-1][1]


def fitted_change(curve: list[tuple[int, float]], start: int) -> float:
    """mIoU change from ``start`` to the final iteration along a least-squares line through the validations in that
    span: the same change as :func:`last_fifth_change` but not carried by one noisy validation at either end."""
    points = [(i, m) for i, m in curve if i >= start]
    mean_i = sum(i for i, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    slope = sum((i - mean_i) * (m - mean_m) for i, m in points) / sum((i - mean_i) ** 2 for i, _ in points)
    return slope * (points[-1][0] - start)


def convergence_table(curves: Mapping[str, list[tuple[int, float]]], iters: Mapping[str, int]) -> Table | None:
    """One row per run validated at least twice: iterations, final val mIoU, the change over the last fifth (from
    its two end validations and along a fitted line)."""
    rows = []
    for name, curve in curves.items():
        if len(curve) < 2:
            continue
        start, delta = last_fifth_change(curve, iters[name]) or (None, None)
        fitted = None if start is None else fitted_change(curve, start)
        flat = None if delta is None else ("yes" if abs(delta) < PLATEAU_POINTS else "no")
        rows.append((name, iters[name], len(curve), curve[-1][1], start, delta, fitted, flat))
    if not rows:
        return None
    return Table("convergence", "Convergence: validation mIoU over the last fifth of training", (
        Column("model"), Column("iterations"), Column("val points"), Column("final val mIoU", ".2f"),
        Column("from iteration"), Column("Δ last fifth", "+.2f"), Column("fitted Δ", "+.2f"),
        Column(f"flat (abs Δ < {PLATEAU_POINTS:g})")),
        tuple(rows), note="Δ last fifth: final val mIoU minus the val mIoU at the last validation at or before 80 % "
        "of the iterations (the training runs' own periodic validation); fitted Δ: the same change along a "
        "least-squares line through every validation in that span.")


def curve_figure(curves: Mapping[str, list[tuple[int, float]]], out_dir: Path) -> list[Path]:
    """``val_miou.{png,pdf}``: val mIoU against iteration, one line per run validated at least twice ([] if none)."""
    curves = {name: curve for name, curve in curves.items() if len(curve) >= 2}
    if not curves:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figures import FONT

    plt.rcParams.update(FONT)
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    for name, curve in curves.items():
        ax.plot([i for i, _ in curve], [m for _, m in curve], marker="o", markersize=3, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("val mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", frameon=False)
    fig.tight_layout()
    return save_figure(fig, out_dir / "val_miou")
