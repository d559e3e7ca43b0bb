"""The files of an ``analyze`` result: similarity / separation JSON + CSV, CKA, t-SNE embeddings and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from analysis.features import SIMILARITY_METRICS, LayerResult
from analysis.layers import layer_sort_key
from analysis.tables import Column, Table, to_csv
from analysis.tokens import REGIONS
from repsep.io import atomic_write_json, atomic_write_npz, atomic_write_text

REGION_DEFINITION = (
    "boundary token: its patch (the input pixels it covers) holds more than one real class, or one of its four "
    "neighbours has another majority class; labelled with its majority real class when real pixels cover at "
    "least half of the patch (no purity filter). interior token: every other token, labelled when its class "
    "covers at least `purity` of the patch. 'all' = every token labelled by the purity rule.")
SEPARATION_METRICS = ("intra", "inter", "ratio", "centroid_gap", "silhouette", "num_classes", "num_tokens")


def by_tokens(per_layer: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(token set, separation metrics) rows of one layer: all labelled tokens, then each region (none for a
    result written before regions existed)."""
    regions = per_layer.get("by_region") or {}
    return [("all", per_layer), *((r, regions[r]) for r in REGIONS if r in regions)]


def write_tsne(out: Path, results: dict[str, dict[str, LayerResult]], picks: dict[str, list[str]],
                image_ids: list[str], class_table: Any, *, seed: int, max_points: int,
                progress: bool) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Embed the picked (model, layer) samples, write ``tsne/<model>__<layer>.npz``; returns layer -> model ->
    (embedding, labels). A sample is cut to ``max_points`` class-balanced points (same rows for every model)."""
    from analysis.tsne import balanced_indices, tsne_embed
    from repsep.progress import progress_bar

    embeddings: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    jobs = [(n, lay) for n, layers in picks.items() for lay in layers]
    for n, lay in progress_bar(jobs, wanted=progress, desc="t-SNE", leave=False):
        r = results[n][lay]
        labels = r.labels.numpy()
        idx = balanced_indices(labels, max(1, max_points // max(1, len(np.unique(labels)))), seed)
        if len(idx) < 5:
            continue
        emb = tsne_embed(r.tokens.numpy()[idx], seed=seed)
        loc = r.locations.numpy()[idx]
        atomic_write_npz(out / "tsne" / f"{n}__{lay}.npz", {
            "embedding": emb, "labels": labels[idx], "image_ids": np.asarray([image_ids[i] for i in loc[:, 0]]),
            "token_index": loc[:, 1], "grid": np.asarray(r.grid), "class_names": np.asarray(class_table.classes)})
        embeddings.setdefault(lay, {})[n] = (emb, labels[idx])
    return embeddings


def write_figures(fig_dir: Path, similarity: dict[str, dict[str, dict[str, float]]], layers: list[str],
                   separation_at: dict[str, dict[str, float]], summary_layer: str,
                   embeddings: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], class_table: Any,
                   caption: dict[str, Any]) -> None:
    """The depth curves, the variance bars at ``summary_layer`` and one t-SNE figure per embedded layer, each
    as PNG + PDF + caption ``.txt``."""
    from analysis.figures import plot_similarity_depth, plot_tsne_panels, plot_variance_bars
    from analysis.robustness_plots import save_figure

    images, purity, per_class, seed = caption["images"], caption["purity"], caption["per_class"], caption["seed"]
    save_figure(plot_similarity_depth(similarity, layers), fig_dir / "similarity_depth")
    atomic_write_text(fig_dir / "similarity_depth.txt", (
        f"Feature similarity against depth on {images} (one colour per model). Left: mean cosine between patch "
        "tokens of the same class (dashed) and of different classes (solid), per image then averaged over images "
        f"(labels: majority class with purity >= {purity}). Middle: patch-wise absolute cosine over all token "
        "pairs (Gong et al. 2021). Right: rank-collapse residual ||X - 1 mu^T||_F / ||X||_F (Dong et al. 2021). "
        "Over-smoothing shows as the different-class curve rising towards the same-class curve.\n"))
    save_figure(plot_variance_bars(separation_at, summary_layer), fig_dir / "variance_bars")
    atomic_write_text(fig_dir / "variance_bars.txt", (
        f"Intra- and inter-class variance of L2-normalised {summary_layer} features per model (at most "
        f"{per_class} tokens per class from {images}), class-balanced means; the ratio inter/intra is written "
        "above each pair (higher = better separated).\n"))
    for lay, panels in embeddings.items():
        stem = "tsne_" + lay.replace(".", "_")  # no dots: save_figure swaps the suffix
        save_figure(plot_tsne_panels(panels, class_table, lay), fig_dir / stem)
        atomic_write_text(fig_dir / f"{stem}.txt", (
            f"t-SNE of {lay} tokens, models side by side (the same sampled locations for every model): "
            f"class-balanced sample of labelled patches from {images}, L2-normalised, PCA to 50 dimensions, "
            f"perplexity 30, seed {seed}; colours are the dataset palette.\n"))


def write_similarity(out: Path, results: dict[str, dict[str, LayerResult]], names: list[str],
                      settings: dict[str, Any], info: dict[str, dict[str, dict[str, Any]]]) -> None:
    models = {n: {lay: {"grid": list(r.grid), **{m: {"mean": r.similarity[m][0], "std": r.similarity[m][1],
                                                    "num_images": r.similarity[m][2]} for m in SIMILARITY_METRICS}}
                  for lay, r in sorted(results[n].items(), key=lambda kv: layer_sort_key(kv[0]))} for n in names}
    definitions = {
        "abs_cos": "mean |cos| over ordered pairs of distinct tokens of an image (Gong et al. 2021)",
        "cos": "mean signed cos over ordered pairs of distinct tokens of an image",
        "same_cos": "mean signed cos over pairs of labelled tokens of the same class in an image",
        "diff_cos": "mean signed cos over pairs of labelled tokens of different classes in an image",
        "residual_ratio": "||X - 1 mu^T||_F / ||X||_F with mu the mean token (Dong et al. 2021)",
        "hf_ratio": "share of 2-D FFT energy over the token grid above hf_cutoff x Nyquist (Wang et al. 2022)",
        "same_cos_interior": "same_cos over pairs of two interior tokens (see regions)",
        "diff_cos_interior": "diff_cos over pairs of two interior tokens",
        "same_cos_boundary": "same_cos over pairs of two boundary tokens (see regions)",
        "diff_cos_boundary": "diff_cos over pairs of two boundary tokens",
        "boundary_share": "labelled boundary tokens / (labelled boundary + interior tokens) of an image",
        "regions": REGION_DEFINITION,
        "averaging": "each statistic per image, then mean and std (ddof 0) over the images where it is defined",
    }
    atomic_write_json(out / "similarity.json", {"settings": settings, "definitions": definitions,
                                                "layer_info": info, "models": models})
    rows = tuple((n, lay, *d["grid"], *(d[m]["mean"] for m in SIMILARITY_METRICS), d["abs_cos"]["num_images"])
                 for n in names for lay, d in models[n].items())
    cols = (Column("model"), Column("layer"), Column("grid_h"), Column("grid_w"),
            *(Column(m, ".4f") for m in SIMILARITY_METRICS), Column("num_images"))
    atomic_write_text(out / "similarity.csv", to_csv(Table("similarity", "similarity", cols, rows)))


def write_separation(out: Path, separation: dict[str, dict[str, dict[str, float]]],
                      settings: dict[str, Any]) -> None:
    ordered = {n: dict(sorted(per.items(), key=lambda kv: layer_sort_key(kv[0]))) for n, per in separation.items()}
    definitions = {
        "features": "L2-normalised tokens of the class-balanced sample (at most per_class per class)",
        "intra": "(1/C') sum_c (1/n_c) sum_{i in c} ||f_i - mu_c||^2",
        "inter": "(1/C') sum_c ||mu_c - mu||^2 with mu the mean of the class means",
        "ratio": "inter / intra",
        "centroid_gap": "mean over classes of the distance from mu_c to the nearest other class mean",
        "silhouette": "sklearn silhouette_score, Euclidean on the normalised features (seeded subsample of 5000)",
    }
    definitions["by_region"] = "the same on the interior / boundary token samples: " + REGION_DEFINITION
    atomic_write_json(out / "separation.json", {"settings": settings, "definitions": definitions, "models": ordered})
    rows = tuple((n, lay, tokens, *(d[m] for m in SEPARATION_METRICS)) for n, per in ordered.items()
                 for lay, top in per.items() for tokens, d in by_tokens(top))
    cols = (Column("model"), Column("layer"), Column("tokens"), *(Column(m, ".4f") for m in SEPARATION_METRICS))
    atomic_write_text(out / "separation.csv", to_csv(Table("separation", "separation", cols, rows)))


def write_cka(out: Path, results: dict[str, dict[str, LayerResult]], names: list[str]) -> None:
    """``cka.json``: layer x layer linear CKA for every pair of models (a model with itself included)."""
    from analysis.similarity import cka_matrix

    pairs = []
    for i, a in enumerate(names):
        for b in names[i:]:
            ra, rb = results[a], results[b]
            la = sorted(ra, key=layer_sort_key)
            lb = sorted(rb, key=layer_sort_key)
            first_a, first_b = ra[la[0]], rb[lb[0]]
            if not torch.equal(first_a.cka_locations, first_b.cka_locations):
                pairs.append({"model_a": a, "model_b": b, "note": "different sampled locations (image sizes differ)"})
                continue
            matrix = cka_matrix({k: ra[k].cka_tokens for k in la}, {k: rb[k].cka_tokens for k in lb})
            pairs.append({"model_a": a, "model_b": b, "layers_a": la, "layers_b": lb, "cka": matrix,
                          "num_tokens": len(first_a.cka_locations)})
    atomic_write_json(out / "cka.json", {
        "definition": "linear CKA (Kornblith et al. 2019) on column-centred tokens; every map area-resampled to "
                      "the common grid (label-map size / cka_stride) at the same class-balanced locations",
        "pairs": pairs})
