"""The ``analyze`` driver: over-smoothness and class separation of one or more checkpoints on one dataset split.

Every model sees the same images (the first ``num_images`` of the split, the first model's eval resize) and keeps
the same sampled token locations (see :mod:`analysis.features`). Outputs in ``out``: ``similarity.json/csv``,
``separation.json/csv``, ``cka.json``, ``tsne/<model>__<layer>.npz``, ``figures/*.png|pdf|txt``, ``summary.md``,
``manifest.json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from analysis.features import SIMILARITY_METRICS, FeatureStats, LayerResult, collect
from analysis.naming import model_name_of
from analysis.tables import Column, Table, to_csv, to_markdown
from repsep.errors import UserError
from repsep.io import atomic_write_json, atomic_write_npz, atomic_write_text, refuse_finished_output

SEPARATION_METRICS = ("intra", "inter", "ratio", "centroid_gap", "silhouette", "num_classes", "num_tokens")
_LAYER_GROUPS = (r"vit\.block(\d+)", r"backbone\.stage(\d+)", r"pathway\.stage(\d+)", r"sasm", r"dca", r"decoder_input")


def layer_sort_key(name: str) -> tuple[int, int, str]:
    """Depth order of feature names: ViT blocks or pyramid stages, pathway stages, sasm, dca, decoder_input, then
    any other name alphabetically."""
    for rank, pattern in enumerate(_LAYER_GROUPS):
        m = re.fullmatch(pattern, name)
        if m:
            return rank, int(m.group(1)) if m.groups() else 0, name
    return len(_LAYER_GROUPS), 0, name


def parse_layers(text: str) -> list[str] | None:
    """``all`` -> None (every feature), else a comma-separated list of feature names."""
    if text.strip() == "all":
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError("--layers: give 'all' or a comma-separated list such as decoder_input,vit.block4")
    return names


def model_names(paths: Sequence[Path]) -> list[str]:
    """Run names of the checkpoints (``runs/x/model_final.pt`` -> ``x``), made unique with ``-2``, ``-3``."""
    names: list[str] = []
    for p in paths:
        base = model_name_of(Path(p))
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def iter_batches(dataset: Any, count: int, batch_size: int) -> Iterator[dict]:
    """Transformed samples ``0..count-1`` stacked into batches of equal image size (a size change starts a new
    batch): ``image [B, 3, H, W]``, ``label [B, H0, W0]``, ``id`` list."""
    pending: list[dict] = []

    def flush() -> dict:
        batch = {key: torch.stack([s[key] for s in pending]) for key in ("image", "label")}
        batch["id"] = [s["id"] for s in pending]
        pending.clear()
        return batch

    for i in range(count):
        sample = dataset[i]
        if pending and (sample["image"].shape != pending[0]["image"].shape
                        or sample["label"].shape != pending[0]["label"].shape):
            yield flush()
        pending.append(sample)
        if len(pending) == batch_size:
            yield flush()
    if pending:
        yield flush()


def _available_layers(model: torch.nn.Module, dataset: Any) -> list[str]:
    with torch.no_grad():
        image = dataset[0]["image"][None].to(next(model.parameters()).device)
        return list(model.forward_features(image))


def _check_known(option: str, wanted: list[str] | None, all_names: set[str]) -> None:
    unknown = [w for w in wanted or () if w not in all_names]
    if unknown:
        raise UserError(f"{option}: unknown feature(s) {', '.join(unknown)}; the models give "
                        f"{', '.join(sorted(all_names, key=layer_sort_key))}")


def _summary_layer(layers_per_model: dict[str, list[str]]) -> str:
    common = set.intersection(*(set(v) for v in layers_per_model.values()))
    if not common:
        raise UserError("--layers: the models share no analysed layer")
    return "decoder_input" if "decoder_input" in common else max(common, key=layer_sort_key)


def analyze(checkpoints: Sequence[str | Path], out: str | Path, *, data: str | None = None, split: str = "val",
            num_images: int = 100, layers: list[str] | None = None, tsne_layers: list[str] | None = None,
            purity: float = 0.75, per_class: int = 200, seed: int = 0, batch_size: int = 8,
            tsne_max_points: int = 20000, hf_cutoff: float = 0.5, cka_stride: int = 16, device: str = "cpu",
            overwrite: bool = False, progress: bool = True) -> list[Table]:
    """Run the whole analysis and write every output; returns the tables at the summary layer (the decoder
    input when every model has one) for printing.

    Args:
        checkpoints: deployed model exports (``model_final.pt``).
        out: output folder.
        data: dataset spec (default: the first checkpoint's).
        layers: feature names (None: every feature of each model).
        tsne_layers: layers that get a t-SNE embedding (None: every analysed layer).
        tsne_max_points: class-balanced cap on the points of one embedding.
        Others: see :class:`analysis.features.FeatureStats`.
    """
    from analysis.separation import class_separation
    from repsep.data import open_dataset
    from repsep.data.transforms import EvalTransform
    from repsep.engine.checkpoint import load_model
    from repsep.manifest import build_manifest, sha256_file

    if not checkpoints:
        raise UserError("--model: give at least one checkpoint")
    refuse_finished_output(out, overwrite)
    if not 0.0 < purity <= 1.0:
        raise UserError(f"--purity: must be in (0, 1], got {purity}")
    if not 0.0 <= hf_cutoff < 2 ** 0.5:
        raise UserError(f"--hf-cutoff: must be in [0, sqrt(2)), got {hf_cutoff}")
    for opt, value in (("--num-images", num_images), ("--per-class", per_class), ("--batch-size", batch_size)):
        if value < 1:
            raise UserError(f"{opt}: must be >= 1, got {value}")
    out = Path(out)
    paths = [Path(p) for p in checkpoints]
    loaded = [load_model(p, map_location=device) for p in paths]
    names = model_names(paths)
    class_table = loaded[0].class_table
    for p, lm in zip(paths[1:], loaded[1:], strict=True):
        if lm.class_table.classes != class_table.classes:
            raise UserError(f"{p}: class table {lm.class_table.name!r} differs from {paths[0]}'s {class_table.name!r}; "
                            "compare models trained on the same label set")
    spec = data or loaded[0].dataset_spec
    inputs = {"checkpoints": {n: {"path": str(p), "sha256": sha256_file(p)} for n, p in zip(names, paths, strict=True)},
              "data": spec, "split": split}
    scale = (loaded[0].train_config.get("eval") or {}).get("scale")
    dataset = open_dataset(spec, split, transform=EvalTransform(scale=tuple(scale) if scale else None))
    if dataset.class_table.classes != class_table.classes:
        raise UserError(f"--data: dataset {spec!r} has classes of {dataset.class_table.name!r}, the models "
                        f"{class_table.name!r}")
    count = min(num_images, len(dataset))
    if count == 0:
        raise UserError(f"--data: split {split!r} of {spec!r} has no images")

    available = {n: _available_layers(lm.model, dataset) for n, lm in zip(names, loaded, strict=True)}
    all_names = set().union(*available.values())
    _check_known("--layers", layers, all_names)
    _check_known("--tsne-layers", tsne_layers, all_names)
    chosen = {n: [lay for lay in available[n] if layers is None or lay in layers] for n in names}
    summary_layer = _summary_layer(chosen)
    results: dict[str, dict[str, LayerResult]] = {}
    for n, lm in zip(names, loaded, strict=True):
        stats = FeatureStats(class_table.num_classes, chosen[n], purity=purity, per_class=per_class, seed=seed,
                             hf_cutoff=hf_cutoff, cka_stride=cka_stride)
        results[n] = collect(lm.model, iter_batches(dataset, count, batch_size), stats, device=device,
                             progress=progress, desc=f"features {n}")
    ordered = sorted(set().union(*map(set, chosen.values())), key=layer_sort_key)

    similarity = {n: {layer: {m: r.similarity[m][0] for m in SIMILARITY_METRICS} for layer, r in res.items()}
                  for n, res in results.items()}
    separation = {n: {layer: class_separation(r.tokens, r.labels, seed=seed) for layer, r in res.items()}
                  for n, res in results.items()}
    settings = {"data": spec, "split": split, "num_images": count, "layers": ordered, "purity": purity,
                "per_class": per_class, "seed": seed, "hf_cutoff": hf_cutoff, "cka_stride": cka_stride,
                "tsne_max_points": tsne_max_points, "eval_scale": list(scale) if scale else None,
                "summary_layer": summary_layer}
    _write_similarity(out, results, names, settings)
    _write_separation(out, separation, settings)
    _write_cka(out, results, names)

    tsne_pick = {n: [lay for lay in chosen[n] if tsne_layers is None or lay in tsne_layers] for n in names}
    embeddings = _write_tsne(out, results, tsne_pick, [dataset.image_id(i) for i in range(count)], class_table,
                             seed=seed, max_points=tsne_max_points, progress=progress)
    caption = {"images": f"{count} {split} images of {spec}", "purity": purity, "per_class": per_class, "seed": seed}
    _write_figures(out / "figures", similarity, ordered, {n: separation[n][summary_layer] for n in names},
                   summary_layer, embeddings, class_table, caption)

    tables = summary_tables(similarity, separation, names, summary_layer)
    atomic_write_text(out / "summary.md", "".join(to_markdown(t) + "\n" for t in tables))
    atomic_write_json(out / "manifest.json", build_manifest("analyze", seeds={"seed": seed}, config=settings,
                                                           inputs=inputs))
    return tables


def _write_tsne(out: Path, results: dict[str, dict[str, LayerResult]], picks: dict[str, list[str]],
                image_ids: list[str], class_table: Any, *, seed: int, max_points: int,
                progress: bool) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Embed the picked (model, layer) samples, write ``tsne/<model>__<layer>.npz``; returns layer -> model ->
    (embedding, labels). A sample is cut to ``max_points`` class-balanced points (same rows for every model)."""
    from tqdm import tqdm

    from analysis.tsne import balanced_indices, tsne_embed

    embeddings: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    jobs = [(n, lay) for n, layers in picks.items() for lay in layers]
    for n, lay in tqdm(jobs, desc="t-SNE", disable=not progress, leave=False):
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


def _write_figures(fig_dir: Path, similarity: dict[str, dict[str, dict[str, float]]], layers: list[str],
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


def _write_similarity(out: Path, results: dict[str, dict[str, LayerResult]], names: list[str],
                      settings: dict[str, Any]) -> None:
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
        "averaging": "each statistic per image, then mean and std (ddof 0) over the images where it is defined",
    }
    atomic_write_json(out / "similarity.json", {"settings": settings, "definitions": definitions, "models": models})
    rows = tuple((n, lay, *d["grid"], *(d[m]["mean"] for m in SIMILARITY_METRICS), d["abs_cos"]["num_images"])
                 for n in names for lay, d in models[n].items())
    cols = (Column("model"), Column("layer"), Column("grid_h"), Column("grid_w"),
            *(Column(m, ".4f") for m in SIMILARITY_METRICS), Column("num_images"))
    atomic_write_text(out / "similarity.csv", to_csv(Table("similarity", "similarity", cols, rows)))


def _write_separation(out: Path, separation: dict[str, dict[str, dict[str, float]]],
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
    atomic_write_json(out / "separation.json", {"settings": settings, "definitions": definitions, "models": ordered})
    rows = tuple((n, lay, *(d[m] for m in SEPARATION_METRICS)) for n, per in ordered.items() for lay, d in per.items())
    cols = (Column("model"), Column("layer"), *(Column(m, ".4f") for m in SEPARATION_METRICS))
    atomic_write_text(out / "separation.csv", to_csv(Table("separation", "separation", cols, rows)))


def _write_cka(out: Path, results: dict[str, dict[str, LayerResult]], names: list[str]) -> None:
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


def summary_tables(similarity: dict[str, dict[str, dict[str, float]]],
                   separation: dict[str, dict[str, dict[str, float]]], names: list[str], layer: str) -> list[Table]:
    """Two tables at ``layer``: the similarity metrics and the separation metrics, one row per model."""
    sim_rows = tuple((n, *(similarity[n][layer][m] for m in SIMILARITY_METRICS)) for n in names)
    sep_rows = tuple((n, *(separation[n][layer][m] for m in SEPARATION_METRICS)) for n in names)
    return [
        Table("similarity", f"Feature similarity at {layer} (mean over images)",
              (Column("model"), *(Column(m, ".4f") for m in SIMILARITY_METRICS)), sim_rows,
              note="same_cos - diff_cos large = classes kept apart; abs_cos / residual near 1 / 0 = over-smoothed."),
        Table("separation", f"Class separation at {layer} (L2-normalised features)",
              (Column("model"), *(Column(m, ".4f" if m not in ("num_classes", "num_tokens") else "d")
                                  for m in SEPARATION_METRICS)), sep_rows,
              note="ratio = inter / intra; higher ratio, centroid gap and silhouette = better separated."),
    ]
