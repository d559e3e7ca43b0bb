"""The ``analyze`` driver: over-smoothness and class separation of one or more checkpoints on one dataset split.

Every model sees the same images (a seeded subset spread over the split's cities / scenes, the first model's eval
resize and inference regime) and keeps the same sampled token locations (see :mod:`analysis.features`). Outputs in
``out`` (default ``<first model's folder>/analyze``, an ownership-marked ``analyze`` result): ``summary.json`` (the
``settings`` block compared by :mod:`repsep.comparability`, the layer key), ``similarity.json/csv``,
``separation.json/csv``, ``cka.json``, ``tsne/<model>__<layer>.npz``, ``figures/*.png|pdf|txt``, ``summary.md``,
``manifest.json``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from analysis.features import REGIMES, SIMILARITY_METRICS, FeatureStats, LayerResult, collect, layer_strides
from analysis.tables import Column, Table, to_csv, to_markdown
from analysis.tokens import REGIONS
from repsep.errors import UserError
from repsep.io import atomic_write_json, atomic_write_npz, atomic_write_text
from repsep.ownership import MARKER

REGION_DEFINITION = (
    "boundary token: its patch (the input pixels it covers) holds more than one real class, or one of its four "
    "neighbours has another majority class; labelled with its majority real class when real pixels cover at "
    "least half of the patch (no purity filter). interior token: every other token, labelled when its class "
    "covers at least `purity` of the patch. 'all' = every token labelled by the purity rule.")

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
    from analysis.report import model_name_of

    names: list[str] = []
    for p in paths:
        base = model_name_of(Path(p))
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def iter_batches(dataset: Any, indices: Sequence[int], batch_size: int) -> Iterator[dict]:
    """Transformed samples ``indices`` (in order) stacked into batches of equal image size (a size change starts
    a new batch): ``image [B, 3, H, W]``, ``label [B, H0, W0]``, ``id`` list."""
    pending: list[dict] = []

    def flush() -> dict:
        batch = {key: torch.stack([s[key] for s in pending]) for key in ("image", "label")}
        batch["id"] = [s["id"] for s in pending]
        pending.clear()
        return batch

    for i in indices:
        sample = dataset[i]
        if pending and (sample["image"].shape != pending[0]["image"].shape
                        or sample["label"].shape != pending[0]["label"].shape):
            yield flush()
        pending.append(sample)
        if len(pending) == batch_size:
            yield flush()
    if pending:
        yield flush()


def layer_info(name: str, stride: int | None = None) -> dict[str, Any]:
    """Where a feature sits, for plotting depth curves on separate axes: ``axis`` is ``backbone`` (``vit.block{i}``
    or ``backbone.stage{s}``, index = block / stage number), ``pathway`` (``pathway.stage{k}``), ``decoder``
    (``sasm``, ``dca``, ``decoder_input``: one point each, in that order) or ``other``; ``kind`` names the family
    (``vit_block``, ``backbone_stage``, ``pathway_stage``, ``sasm``, ``dca``, ``decoder_input``, ``other``)."""
    for pattern, kind, axis in ((r"vit\.block(\d+)", "vit_block", "backbone"),
                                (r"backbone\.stage(\d+)", "backbone_stage", "backbone"),
                                (r"pathway\.stage(\d+)", "pathway_stage", "pathway")):
        m = re.fullmatch(pattern, name)
        if m:
            return {"kind": kind, "axis": axis, "index": int(m.group(1)), "stride": stride}
    if name in ("sasm", "dca", "decoder_input"):
        return {"kind": name, "axis": "decoder", "index": ("sasm", "dca", "decoder_input").index(name) + 1,
                "stride": stride}
    return {"kind": "other", "axis": "other", "index": None, "stride": stride}


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


def _check_options(purity: float, hf_cutoff: float, values: dict[str, int]) -> None:
    if not 0.0 < purity <= 1.0:
        raise UserError(f"--purity: must be in (0, 1], got {purity}")
    if not 0.0 <= hf_cutoff < 2 ** 0.5:
        raise UserError(f"--hf-cutoff: must be in [0, sqrt(2)), got {hf_cutoff}")
    for opt, value in values.items():
        if value < 1:
            raise UserError(f"{opt}: must be >= 1, got {value}")


def _resolve(train_config: dict, regime: str | None, crop: tuple[int, int] | None,
             stride: tuple[int, int] | None) -> dict[str, Any]:
    """:func:`repsep.engine.inference.resolve_settings` with its ``--mode`` messages said as ``--regime``."""
    from repsep.engine.inference import resolve_settings

    try:
        return resolve_settings(train_config, mode=regime, crop=crop, stride=stride)
    except UserError as e:
        text = str(e)
        raise UserError("--regime " + text[len("--mode "):] if text.startswith("--mode ") else text) from None


def _check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {device}: not a device (cpu, cuda, cuda:1 ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def default_out(checkpoints: Sequence[str | Path]) -> Path:
    """``<first model's folder>/analyze`` (the default of every command: the result lives beside its model)."""
    return Path(checkpoints[0]).parent / "analyze"


def analyze(checkpoints: Sequence[str | Path], out: str | Path | None = None, *, data: str | None = None,
            split: str = "val", num_images: int | None = 100, subset_seed: int = 0, regime: str | None = None,
            crop: tuple[int, int] | None = None, stride: tuple[int, int] | None = None,
            layers: list[str] | None = None, tsne_layers: list[str] | None = None, purity: float = 0.75,
            per_class: int = 200, seed: int = 0, batch_size: int = 8, tsne_max_points: int = 20000,
            hf_cutoff: float = 0.5, cka_stride: int = 16, device: str = "cpu", overwrite: bool = False,
            progress: bool = True, echo: Callable[[str], None] = print) -> list[Table]:
    """Run the whole analysis and write every output; returns the tables at the summary layer (the decoder
    input when every model has one) for printing.

    Args:
        checkpoints: deployed model exports (``model_final.pt``).
        out: output folder (default :func:`default_out`); an ``analyze`` result, replaced only with ``overwrite``
            (built beside and swapped in after success, see :func:`repsep.ownership.replace_result`).
        data: dataset spec (default: the first checkpoint's).
        num_images: images analysed, a seeded stratified subset (:func:`repsep.data.subset.subset_indices` with
            ``subset_seed``); None or more than the split: the whole split (said in one line).
        regime: ``whole`` or ``slide`` (windows at the training crop, the evaluation's windows); None: the first
            model's recipe eval mode (:func:`repsep.engine.inference.resolve_settings`).
        crop, stride: slide windows (h, w); None: the run's eval settings, else the training crop and 2/3 of it.
        layers: feature names (None: every feature of each model).
        tsne_layers: layers that get a t-SNE embedding (None: every analysed layer).
        tsne_max_points: class-balanced cap on the points of one embedding.
        echo: where the one-line notes go (the start summary, a clamped ``num_images``).
        Others: see :class:`analysis.features.FeatureStats`.
    """
    from repsep.ownership import replace_result

    if not checkpoints:
        raise UserError("--model: give at least one checkpoint")
    _check_options(purity, hf_cutoff, {"--num-images": 1 if num_images is None else num_images,
                                       "--per-class": per_class, "--batch-size": batch_size,
                                       "--cka-stride": cka_stride})
    if regime is not None and regime not in REGIMES:
        raise UserError(f"--regime {regime}: choose one of {', '.join(REGIMES)}")
    _check_device(device)
    paths = [Path(p) for p in checkpoints]
    for p in paths:
        if not p.is_file():
            raise UserError(f"{p}: file not found")
    out = Path(out) if out is not None else default_out(paths)
    with replace_result(out, "analyze", overwrite=overwrite, inputs=paths) as staging:
        from repsep.engine.checkpoint import load_model

        loaded = [load_model(p, map_location=device) for p in paths]
        inference = _resolve(loaded[0].train_config, regime, crop, stride)
        for p, lm in zip(paths[1:], loaded[1:], strict=True):
            other = _resolve(lm.train_config, inference["mode"], crop, stride)
            if (other["crop"], other["stride"], other["scale"]) != (inference["crop"], inference["stride"],
                                                                    inference["scale"]):
                echo(f"analyze: note: {p} was trained with other eval settings; every model is analysed with "
                     f"{paths[0]}'s (the same windows and token locations for all)")
        return _analyze_loaded(paths, loaded, Path(staging.path), staging, inference, out=out, data=data,
                               split=split, num_images=num_images, subset_seed=subset_seed, layers=layers,
                               tsne_layers=tsne_layers, purity=purity, per_class=per_class, seed=seed,
                               batch_size=batch_size, tsne_max_points=tsne_max_points, hf_cutoff=hf_cutoff,
                               cka_stride=cka_stride, device=device, progress=progress, echo=echo)


def _analyze_loaded(paths: list[Path], loaded: list[Any], root: Path, staging: Any, inference: dict[str, Any], *,
                    out: Path, data: str | None, split: str, num_images: int | None, subset_seed: int,
                    layers: list[str] | None, tsne_layers: list[str] | None, purity: float, per_class: int,
                    seed: int, batch_size: int, tsne_max_points: int, hf_cutoff: float, cka_stride: int,
                    device: str, progress: bool, echo: Callable[[str], None]) -> list[Table]:
    """The body of :func:`analyze` once the output folder is claimed and the models loaded; writes into
    ``root`` (the staging folder) and records every file in ``staging``."""
    from analysis.separation import class_separation
    from repsep.data import open_dataset
    from repsep.data.scan import scan_split
    from repsep.data.subset import subset_indices
    from repsep.data.transforms import EvalTransform
    from repsep.manifest import build_manifest, sha256_file

    names = model_names(paths)
    class_table = loaded[0].class_table
    for p, lm in zip(paths[1:], loaded[1:], strict=True):
        if lm.class_table.classes != class_table.classes:
            raise UserError(f"{p}: class table {lm.class_table.name!r} differs from {paths[0]}'s {class_table.name!r}; "
                            "compare models trained on the same label set")
    spec = data or loaded[0].dataset_spec
    digests = [sha256_file(p) for p in paths]
    inputs = {"checkpoints": {n: {"path": str(p), "sha256": d} for n, p, d in zip(names, paths, digests, strict=True)},
              "data": spec, "split": split}
    scale = inference["scale"]
    dataset = open_dataset(spec, split, transform=EvalTransform(scale=tuple(scale) if scale else None))
    if dataset.class_table.classes != class_table.classes:
        raise UserError(f"--data: dataset {spec!r} has classes of {dataset.class_table.name!r}, the models "
                        f"{class_table.name!r}")
    if len(dataset) == 0:
        raise UserError(f"--data: split {split!r} of {spec!r} has no images")
    if num_images is not None and num_images > len(dataset):
        echo(f"analyze: --num-images {num_images} is more than the {len(dataset)} images of split {split!r}; "
             f"analysing all {len(dataset)}")
    indices = subset_indices(dataset, num_images, subset_seed)
    whole_split = len(indices) == len(dataset)
    count = len(indices)
    image_ids = [dataset.image_id(i) for i in indices]
    scan_split(dataset, progress=progress)
    mode = inference["mode"]
    crop, stride = inference["crop"], inference["stride"]
    window = f" {crop[0]}x{crop[1]} stride {stride[0]}x{stride[1]}" if mode == "slide" else ""
    echo(f"analyze: device {device}, {count} {split} images of {spec}, batch {batch_size}, regime {mode}{window}, "
         f"weights loaded: {', '.join(f'{n} ({p})' for n, p in zip(names, paths, strict=True))}")

    strides = {n: layer_strides(lm.model.eval().to(device), device) for n, lm in zip(names, loaded, strict=True)}
    all_names = set().union(*strides.values())
    _check_known("--layers", layers, all_names)
    _check_known("--tsne-layers", tsne_layers, all_names)
    chosen = {n: [lay for lay in strides[n] if layers is None or lay in layers] for n in names}
    summary_layer = _summary_layer(chosen)
    results: dict[str, dict[str, LayerResult]] = {}
    for n, lm in zip(names, loaded, strict=True):
        stats = FeatureStats(class_table.num_classes, chosen[n], purity=purity, per_class=per_class, seed=seed,
                             hf_cutoff=hf_cutoff, cka_stride=cka_stride)
        results[n] = collect(lm.model, iter_batches(dataset, indices, batch_size), stats, device=device,
                             progress=progress, desc=f"features {n}", regime=mode, crop=crop, stride=stride,
                             total=-(-count // batch_size))
    ordered = sorted(set().union(*map(set, chosen.values())), key=layer_sort_key)

    similarity = {n: {layer: {m: r.similarity[m][0] for m in SIMILARITY_METRICS} for layer, r in res.items()}
                  for n, res in results.items()}
    separation = {n: {layer: {**class_separation(r.tokens, r.labels, seed=seed),
                              "by_region": {reg: class_separation(t, lab, seed=seed)
                                            for reg, (t, lab, _) in r.regions.items()}}
                      for layer, r in res.items()} for n, res in results.items()}
    block = {"model_sha256": digests, "dataset": spec, "dataset_fingerprint": dataset.fingerprint(), "split": split,
             "image_ids_sha256": hashlib.sha256("\n".join(sorted(image_ids)).encode()).hexdigest(),
             "num_images": count, "subset_seed": None if whole_split else subset_seed, "regime": mode,
             "inference": {"mode": mode, "crop": list(crop) if crop else None,
                           "stride": list(stride) if stride else None, "scales": [1.0], "flip": False},
             "eval_scale": list(scale) if scale else None, "precision": "fp32"}
    settings = {**block, "data": spec, "layers": ordered, "purity": purity, "per_class": per_class, "seed": seed,
                "hf_cutoff": hf_cutoff, "cka_stride": cka_stride, "tsne_max_points": tsne_max_points,
                "summary_layer": summary_layer}
    info = {n: {lay: layer_info(lay, results[n][lay].stride) for lay in sorted(results[n], key=layer_sort_key)}
            for n in names}
    _write_similarity(root, results, names, settings, info)
    _write_separation(root, separation, settings)
    _write_cka(root, results, names)

    tsne_pick = {n: [lay for lay in chosen[n] if tsne_layers is None or lay in tsne_layers] for n in names}
    embeddings = _write_tsne(root, results, tsne_pick, image_ids, class_table, seed=seed,
                             max_points=tsne_max_points, progress=progress)
    caption = {"images": f"{count} {split} images of {spec}", "purity": purity, "per_class": per_class, "seed": seed}
    _write_figures(root / "figures", similarity, ordered, {n: separation[n][summary_layer] for n in names},
                   summary_layer, embeddings, class_table, caption)

    tables = summary_tables(similarity, separation, names, summary_layer)
    atomic_write_text(root / "summary.md", "".join(to_markdown(t) + "\n" for t in tables))
    atomic_write_json(root / "summary.json", {
        "settings": block, "analysis": {k: v for k, v in settings.items() if k not in block},
        "num_images_requested": num_images, "image_ids": image_ids, "models": names, "layers": info,
        "summary_layer": summary_layer, "regions": REGION_DEFINITION})
    atomic_write_json(root / "manifest.json", build_manifest("analyze", seeds={"seed": seed}, config=settings,
                                                            inputs=inputs))
    for rel in sorted(q.relative_to(root) for q in root.rglob("*") if q.is_file()):
        if rel.as_posix() != MARKER:
            staging.record(rel)
    return tables


def _write_tsne(out: Path, results: dict[str, dict[str, LayerResult]], picks: dict[str, list[str]],
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
    definitions["by_region"] = "the same on the interior / boundary token samples: " + REGION_DEFINITION
    atomic_write_json(out / "separation.json", {"settings": settings, "definitions": definitions, "models": ordered})
    rows = tuple((n, lay, tokens, *(d[m] for m in SEPARATION_METRICS)) for n, per in ordered.items()
                 for lay, top in per.items() for tokens, d in _by_tokens(top))
    cols = (Column("model"), Column("layer"), Column("tokens"), *(Column(m, ".4f") for m in SEPARATION_METRICS))
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


def _by_tokens(per_layer: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(token set, separation metrics) rows of one layer: all labelled tokens, then each region (NaN rows for a
    result written before regions existed)."""
    regions = per_layer.get("by_region") or {}
    nan = dict.fromkeys(SEPARATION_METRICS, math.nan)
    return [("all", per_layer), *((r, regions.get(r, nan)) for r in REGIONS)]


def summary_tables(similarity: dict[str, dict[str, dict[str, float]]],
                   separation: dict[str, dict[str, dict[str, Any]]], names: list[str], layer: str) -> list[Table]:
    """Two tables at ``layer``: the similarity metrics (one row per model, with the interior / boundary pair
    cosines as columns) and the separation metrics (one row per model and token set: all, interior, boundary)."""
    sim_rows = tuple((n, *(similarity[n][layer].get(m, math.nan) for m in SIMILARITY_METRICS)) for n in names)
    sep_rows = tuple((n, tokens, *(d.get(m, math.nan) for m in SEPARATION_METRICS)) for n in names
                     for tokens, d in _by_tokens(separation[n][layer]))
    return [
        Table("similarity", f"Feature similarity at {layer} (mean over images)",
              (Column("model"), *(Column(m, ".4f") for m in SIMILARITY_METRICS)), sim_rows,
              note="same_cos - diff_cos large = classes kept apart; abs_cos / residual near 1 / 0 = over-smoothed; "
                   "_interior / _boundary: pairs of two interior / two boundary tokens (boundary: the patch holds "
                   "two classes or a 4-neighbour has another majority class)."),
        Table("separation", f"Class separation at {layer} (L2-normalised features)",
              (Column("model"), Column("tokens"), *(Column(m, ".4f" if m not in ("num_classes", "num_tokens")
                                                         else "d") for m in SEPARATION_METRICS)), sep_rows,
              note="ratio = inter / intra; higher ratio, centroid gap and silhouette = better separated; tokens: "
                   "all labelled (purity rule), interior, boundary (majority class, no purity filter)."),
    ]
