"""Over-smoothness figures: similarity against depth, intra/inter-class variance bars, t-SNE panels.

Each function returns a matplotlib figure (Agg backend); :func:`analysis.robustness_plots.save_figure` writes it
as PNG and PDF with fixed metadata, so equal numbers give equal bytes with the same matplotlib version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from repsep.data.labels import ClassTable

FONT = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "svg.hashsalt": "repsep"}
Stats = Mapping[str, Mapping[str, Mapping[str, float]]]  # model -> layer -> metric -> value


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(FONT)
    return plt


def layer_family(name: str) -> str:
    """The family of a feature name: ``vit.block3`` -> ``vit.block``, ``pathway.stage2`` -> ``pathway.stage``;
    names without a trailing number (``sasm``, ``decoder_input``) are their own family."""
    return re.sub(r"\d+$", "", name)


def line_segments(layers: Sequence[str], present: Sequence[str]) -> list[list[int]]:
    """Runs of x positions (indices into ``layers``) that one line may join: consecutive layers of one family
    that the model has. A line never spans a layer the model lacks nor joins ViT blocks to pathway stages."""
    runs: list[list[int]] = []
    for i, name in enumerate(layers):
        if name not in present:
            continue
        if runs and runs[-1][-1] == i - 1 and layer_family(layers[i - 1]) == layer_family(name):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def plot_similarity_depth(similarity: Stats, layers: Sequence[str]):
    """Three panels against the layers in ``layers`` order: same-class (dashed) and different-class (solid) mean
    cosine, patch-wise |cos|, and the rank-collapse residual ratio. A model's line joins only consecutive layers
    of one family that it has (ViT blocks, pathway stages, ...; see :func:`line_segments`); dotted vertical
    lines separate the families, and every y axis names its quantity.

    ``similarity[model][layer]`` holds ``same_cos``, ``diff_cos``, ``abs_cos``, ``residual_ratio``.
    """
    plt = _pyplot()
    x = np.arange(len(layers))
    fig, axes = plt.subplots(1, 3, figsize=(max(9.0, 0.45 * len(layers) * 3), 3.2))
    panels = (("mean cosine (same: dashed, different: solid)", "cosine similarity",
               (("same_cos", "--"), ("diff_cos", "-"))),
              ("patch-wise |cos| (Gong et al.)", "mean |cos|", (("abs_cos", "-"),)),
              ("residual ratio ||X - 1 mu^T|| / ||X||", "residual ratio", (("residual_ratio", "-"),)))
    bounds = [i - 0.5 for i in range(1, len(layers)) if layer_family(layers[i]) != layer_family(layers[i - 1])]
    for ax, (title, ylabel, series) in zip(axes, panels, strict=True):
        for k, (model, per_layer) in enumerate(similarity.items()):
            for n, xs in enumerate(line_segments(layers, list(per_layer))):
                for metric, style in series:
                    y = np.asarray([per_layer[layers[i]][metric] for i in xs], dtype=float)
                    label = model if n == 0 and metric in ("diff_cos", "abs_cos", "residual_ratio") else None
                    ax.plot(xs, y, linestyle=style, marker="o", markersize=3, color=f"C{k}", label=label)
        for b in bounds:
            ax.axvline(b, color="0.7", linestyle=":", linewidth=0.8)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("layer (depth order)")
        ax.set_xticks(x, layers, rotation=60, ha="right")
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_variance_bars(separation: Mapping[str, Mapping[str, float]], layer: str):
    """Grouped bars of intra- and inter-class variance (L2-normalised features) per model at ``layer``, with the
    inter/intra ratio written above each pair. ``separation[model]`` holds ``intra``, ``inter``, ``ratio``."""
    plt = _pyplot()
    models = list(separation)
    x = np.arange(len(models))
    fig, ax = plt.subplots(figsize=(max(3.5, 1.3 * len(models) + 1.5), 3.0))
    intra = [separation[m]["intra"] for m in models]
    inter = [separation[m]["inter"] for m in models]
    ax.bar(x - 0.18, intra, width=0.36, label="intra-class", color="0.6")
    ax.bar(x + 0.18, inter, width=0.36, label="inter-class", color="C0")
    for i, m in enumerate(models):
        ax.annotate(f"ratio {separation[m]['ratio']:.2f}", (x[i], max(intra[i], inter[i])), ha="center",
                    va="bottom", xytext=(0, 2), textcoords="offset points", fontsize=8)
    ax.set_xticks(x, models)
    ax.set_ylabel("variance (unit-norm features)")
    ax.set_title(f"class separation at {layer}")
    ax.margins(y=0.15)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_tsne_panels(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], class_table: ClassTable, layer: str):
    """One t-SNE scatter per model side by side, coloured by the dataset palette, with a class legend.

    ``panels[model] = (embedding [n, 2], labels [n])``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 1.6, 3.6), squeeze=False)
    present = sorted({int(c) for _, labels in panels.values() for c in np.unique(labels)})
    colours = {c: np.asarray(class_table.palette[c], dtype=float) / 255.0 for c in present}
    for ax, (model, (emb, labels)) in zip(axes[0], panels.items(), strict=True):
        ax.scatter(emb[:, 0], emb[:, 1], c=np.asarray([colours[int(c)] for c in labels]).reshape(-1, 3), s=3,
                   linewidths=0, rasterized=True)
        ax.set_title(f"{model}: {layer}")
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[c], markersize=5,
                          label=class_table.classes[c]) for c in present]
    fig.legend(handles=handles, loc="center right", frameon=False, ncol=1 if len(present) <= 20 else 2)
    fig.tight_layout(rect=(0, 0, 1 - 1.4 / fig.get_figwidth(), 1))
    return fig
