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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from analysis.features import REGIMES, SIMILARITY_METRICS, FeatureStats, LayerResult, collect, layer_strides
from analysis.layers import layer_info, layer_sort_key
from analysis.naming import model_name_of
from analysis.tables import Column, Table, to_markdown
from analysis.writers import (
    REGION_DEFINITION,
    SEPARATION_METRICS,
    by_tokens,
    write_cka,
    write_figures,
    write_separation,
    write_similarity,
    write_tsne,
)
from repsep.errors import UserError
from repsep.io import atomic_write_json, atomic_write_text
from repsep.ownership import MARKER

__all__ = ["SEPARATION_METRICS", "analyze", "default_out", "layer_info", "layer_sort_key", "parse_layers",
           "summary_tables"]


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
             stride: tuple[int, int] | None, precision: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """:func:`repsep.engine.inference.resolve_settings` with its ``--mode`` messages said as ``--regime``."""
    from repsep.engine.inference import resolve_settings

    try:
        return resolve_settings(train_config, mode=regime, crop=crop, stride=stride, precision=precision,
                                device=device)
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
            progress: bool = True, echo: Callable[[str], None] = print, precision: str | None = None) -> list[Table]:
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
        precision: the forward passes' autocast precision, fp32 / bf16 / fp16 (None: bf16 on CUDA, else fp32).
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
    from repsep.engine.precision import resolve_precision

    precision = resolve_precision(precision, device)
    paths = [Path(p) for p in checkpoints]
    for p in paths:
        if not p.is_file():
            raise UserError(f"{p}: file not found")
    out = Path(out) if out is not None else default_out(paths)
    with replace_result(out, "analyze", overwrite=overwrite, inputs=paths) as staging:
        from repsep.engine.checkpoint import load_model

        loaded = [load_model(p, map_location=device) for p in paths]
        inference = _resolve(loaded[0].train_config, regime, crop, stride, precision, device)
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
         f"precision {inference['precision']}, "
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
                             total=-(-count // batch_size), precision=inference["precision"])
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
             "eval_scale": list(scale) if scale else None, "precision": inference["precision"]}
    settings = {**block, "data": spec, "layers": ordered, "purity": purity, "per_class": per_class, "seed": seed,
                "hf_cutoff": hf_cutoff, "cka_stride": cka_stride, "tsne_max_points": tsne_max_points,
                "summary_layer": summary_layer}
    info = {n: {lay: layer_info(lay, results[n][lay].stride) for lay in sorted(results[n], key=layer_sort_key)}
            for n in names}
    write_similarity(root, results, names, settings, info)
    write_separation(root, separation, settings)
    write_cka(root, results, names)

    tsne_pick = {n: [lay for lay in chosen[n] if tsne_layers is None or lay in tsne_layers] for n in names}
    embeddings = write_tsne(root, results, tsne_pick, image_ids, class_table, seed=seed,
                             max_points=tsne_max_points, progress=progress)
    caption = {"images": f"{count} {split} images of {spec}", "purity": purity, "per_class": per_class, "seed": seed}
    write_figures(root / "figures", similarity, ordered, {n: separation[n][summary_layer] for n in names},
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


def summary_tables(similarity: dict[str, dict[str, dict[str, float]]],
                   separation: dict[str, dict[str, dict[str, Any]]], names: list[str], layer: str) -> list[Table]:
    """Two tables at ``layer``: the similarity metrics (one row per model, with the interior / boundary pair
    cosines as columns) and the separation metrics (one row per model and token set: all, interior, boundary)."""
    sim_rows = tuple((n, *(similarity[n][layer].get(m, math.nan) for m in SIMILARITY_METRICS)) for n in names)
    sep_rows = tuple((n, tokens, *(d.get(m, math.nan) for m in SEPARATION_METRICS)) for n in names
                     for tokens, d in by_tokens(separation[n][layer]))
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
