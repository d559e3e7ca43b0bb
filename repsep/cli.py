"""The ``repsep-bench`` command line. Thin: parse options, call library functions, print results.

Every command accepts ``--help``. Bad input raises :class:`repsep.errors.UserError`, which :func:`main` turns
into one line on stderr and exit code 2. Runs under ``torchrun`` as ``python -m repsep.cli ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from repsep.errors import EXIT_BAD_INPUT, UserError

app = typer.Typer(
    name="repsep-bench",
    help="Baseline ViT vs RSSeg segmenters: train, evaluate, corrupt, analyse over-smoothness, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Generate and check datasets (SynthCity, Cityscapes, ADE20K).", no_args_is_help=True)
models_app = typer.Typer(help="List the model registry and inspect a model's size and cost.", no_args_is_help=True)
corruptions_app = typer.Typer(help="The corruption suite: list it, write corrupted datasets to disk.",
                              no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(corruptions_app, name="corruptions")


# ---- data commands (repsep.data) ----------------------------------------------------------------------------

def _parse_size(text: str, option: str) -> tuple[int, int]:
    height, sep, width = text.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit():
        raise UserError(f"{option} {text}: expected HEIGHTxWIDTH, e.g. 256x512")
    return int(height), int(width)


@data_app.command("synth")
def data_synth(
    out: str = typer.Option(..., "--out", help="Output folder (created; must not exist unless it already holds "
                            "exactly this dataset, which is then kept)."),
    num_train: int = typer.Option(300, help="Number of training images."),
    num_val: int = typer.Option(100, help="Number of validation images."),
    size: str = typer.Option("256x512", help="Image size HEIGHTxWIDTH; Cityscapes' aspect is 1:2."),
    seed: int = typer.Option(0, help="Root seed; image i of a split depends only on (seed, split, i)."),
    layout: str = typer.Option("cityscapes", help="cityscapes: leftImg8bit/ + gtFine/ PNGs (labelIds and "
                               "labelTrainIds), open with synthcity:PATH. ade20k: ADEChallengeData2016-style "
                               "images/ JPEGs + annotations/ (0 = other, 1..150), open with ade20k:PATH."),
    texture_contrast: float = typer.Option(1.0, help="Amplitude of the textures that tell classes apart "
                                           "(0 = flat colours: harder for texture-blind models, 2 = strong)."),
    object_density: float = typer.Option(1.0, help="Multiplies the expected number of objects per image."),
    thin_share: float = typer.Option(0.5, help="Share of thin objects (poles, signs, lights, persons, two-wheelers) "
                                     "versus bulky vehicles, 0..1."),
    lighting_range: float = typer.Option(0.35, help="Spread of random lighting (gain, tint, gradient, shadows), "
                                         "0 = fixed light, up to 0.9."),
    workers: int = typer.Option(0, help="Worker processes (0 = up to 4); the output bytes do not depend on it."),
) -> None:
    """Generate SynthCity, the procedural street-scene dataset (byte-identical for the same options)."""
    import time

    from repsep.data.synthcity import META_FILE, SceneKnobs, generate

    knobs = SceneKnobs(texture_contrast=texture_contrast, object_density=object_density, thin_share=thin_share,
                       lighting_range=lighting_range)
    start = time.perf_counter()
    root = generate(out, num_train, num_val, size=_parse_size(size, "--size"), seed=seed, layout=layout,
                    knobs=knobs, workers=workers or None, progress=True)
    print(f"SynthCity ({layout}, {num_train} train + {num_val} val, {size}, seed {seed}) in {root} "
          f"[{time.perf_counter() - start:.1f} s]; parameters in {root / META_FILE}")


@data_app.command("check")
def data_check(
    path: str = typer.Argument(..., help="Dataset root: Cityscapes layout (leftImg8bit/, gtFine/) or ADE20K "
                               "(images/, annotations/)."),
    layout: str = typer.Option("cityscapes", help="cityscapes (also SynthCity folders) or ade20k."),
    split: str = typer.Option("val", help="Split to check: train or val (ADE20K: training/validation folders)."),
    json_out: str = typer.Option(None, "--json", help="Also write the histogram as JSON to this file."),
) -> None:
    """Validate every image/label pair of a split and print a per-class pixel histogram.

    Fails with exit code 2 and one line naming the file on: missing folders, images without labels, unreadable or
    truncated files, labels that are not 8-bit single-channel, of another size than the image, or with values
    outside the class table.
    """
    from repsep.data.check import class_histogram, format_histogram
    from repsep.io import atomic_write_json

    if layout not in ("cityscapes", "ade20k"):
        raise UserError(f"--layout {layout}: choose cityscapes or ade20k")
    from repsep.data import open_dataset

    hist = class_histogram(open_dataset(f"{layout}:{path}", split), progress=True)
    print(format_histogram(hist))
    if json_out:
        atomic_write_json(json_out, hist)


# ---- models commands (repsep.models) ------------------------------------------------------------------------

_MODEL_SET_HELP = ("Override a ModelConfig field, repeatable: --set size=L, --set backbone=vit_base_patch16_384, "
                   "--set width=192, --set taps=[6,12,18,24], --set dca=false, --set discrepancy=laplacian. "
                   "`models list` shows the sizes; docs/models.md lists every field.")


@models_app.command("list")
def models_list_cmd(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the list as JSON to this file."),
) -> None:
    """The named models, their size presets and RSSeg switches.

    baseline_* = backbone + RSSeg's decoder without any separation part; rsseg_* = + decoupled local pathway,
    SASM and DCA, each switchable (--set pathway=false ...) for the ablation ladder.
    """
    from repsep.io import atomic_write_json
    from repsep.models import MODELS, SIZES, model_config

    rows = []
    for name, factory in MODELS.items():
        family = name.split("_")[1]
        cfg = model_config(name)
        rows.append({"name": name, "description": (factory.__doc__ or "").strip().splitlines()[0],
                     "sizes": {s: v["backbone"] for s, v in SIZES[family].items()},
                     "switches": {"pathway": cfg.pathway, "sasm": cfg.sasm, "dca": cfg.dca}})
    for row in rows:
        on = [k for k, v in row["switches"].items() if v]
        print(f"{row['name']:<14}{row['description']}")
        print(f"{'':<14}parts: {', '.join(on) or 'none'}; sizes: "
              + ", ".join(f"{s} ({b})" for s, b in row["sizes"].items()))
    print("\nsize 'tiny' (the default) is a 4-block 96-wide ViT / 1-block-per-stage PVTv2-b0 for tests and SynthCity.")
    if json_out is not None:
        atomic_write_json(json_out, rows)


@models_app.command("info")
def models_info_cmd(
    name: str = typer.Argument(..., help="Model name (`repsep-bench models list`)."),
    size: str = typer.Option("512x512", "--size", help="Input size HxW for the GFLOPs count (640 = 640x640)."),
    overrides: list[str] = typer.Option([], "--set", help=_MODEL_SET_HELP),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the numbers as JSON to this file."),
) -> None:
    """Parameters (backbone / extra / total, training-only aux heads) and inference GFLOPs of a model.

    Counted on the meta device (no weights are created, so even ViT-L is quick), eval mode, deployed, batch 1,
    with torch.utils.flop_counter (2 FLOPs per multiply-add; GMACs, what most papers call GFLOPs, also shown).
    """
    from repsep.io import atomic_write_json
    from repsep.models.profile import format_info, model_info, parse_image_size
    from repsep.models.registry import model_config, parse_overrides

    cfg = model_config(name, **parse_overrides(overrides))
    info = model_info(cfg, parse_image_size(size))
    print(format_info(info))
    if json_out is not None:
        atomic_write_json(json_out, info)

# ---- train / eval (repsep.engine) ---------------------------------------------------------------------------

def _parse_scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--scales {text}: expected comma-separated factors, e.g. 0.5,0.75,1.0,1.25,1.5,1.75") from None
    if not scales or min(scales) <= 0:
        raise UserError(f"--scales {text}: factors must be positive")
    return scales


@app.command("train")
def train_cmd(
    config: str = typer.Argument("synthcity_tiny_rsseg", help="A YAML recipe: a path, or the name of a bundled one "
                                 "(synthcity_tiny_{baseline,rsseg}: CPU-sized on SynthCity; cityscapes_vit_{b,l}_*, "
                                 "ade20k_vit_{b,l}_*, cityscapes_pvt_v2_b2_rsseg: the standard GPU recipes)."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default runs/<recipe name>): config.yaml, "
                                    "metrics.jsonl, checkpoint_last.pt, model_final.pt, manifest.json, DONE."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoint_last.pt; the "
                                "final weights equal an uninterrupted run's. Needs the same config (worker count and "
                                "intervals may change). A finished run is left as is."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete the run files in --out and start over."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, KEY=VALUE with a dotted key and a "
                                   "YAML value, e.g. --set optim.lr=1e-4 --set data.crop=[512,512]. Repeatable."),
    stop_at: int | None = typer.Option(None, "--stop-at", min=1, help="Stop after this iteration with a checkpoint "
                                       "(for time-limited job slots); continue later with --resume."),
) -> None:
    """Train a segmenter from a recipe (AdamW, layer-wise lr decay, poly schedule; torchrun-ready, exact resume).

    Effective batch = data.batch_size x accum_steps x number of processes.

    Multi-GPU: torchrun --nproc-per-node N -m repsep.cli train RECIPE (data sharded, only rank 0 writes).
    """
    from repsep.config import load_config
    from repsep.engine import distributed
    from repsep.engine.train import train

    cfg = load_config(config, set_)
    out = out or Path("runs") / Path(config).stem
    try:
        result = train(cfg, out, resume=resume, overwrite=overwrite, stop_at=stop_at)
        main = distributed.is_main()
    finally:
        distributed.cleanup()
    if not main:
        return
    if result["status"] == "done":
        print(f"{out}: already finished (DONE); nothing to do")
    elif result["status"] == "stopped":
        print(f"{out}: stopped at iteration {result['iter']}; continue with --resume")
    else:
        val = result["val"]
        summary = f"val mIoU {val['mIoU']:.2f}  aAcc {val['aAcc']:.2f}  mAcc {val['mAcc']:.2f}  " if val else ""
        print(f"{out}: finished {result['iter']} iterations  {summary}-> {out / 'model_final.pt'}")


@app.command("eval")
def eval_cmd(
    model: Path = typer.Option(..., "--model", help="A model export (model_final.pt from `train`)."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec: cityscapes:PATH, ade20k:PATH, synthcity, "
                                    "synthcity:PATH (default: the one the model was trained on)."),
    split: str = typer.Option("val", "--split", help="Dataset split to evaluate."),
    mode: str | None = typer.Option(None, "--mode", help="whole (one pass per image) or slide (windows of --crop "
                                    "every --stride, mmseg slide_inference; standard for plain ViTs on large "
                                    "images). Default: the model's training config."),
    crop: str | None = typer.Option(None, "--crop", help="Slide window HEIGHTxWIDTH, e.g. 768x768."),
    stride: str | None = typer.Option(None, "--stride", help="Slide stride HEIGHTxWIDTH, e.g. 512x512."),
    scales: str | None = typer.Option(None, "--scales", help="Multi-scale test: comma-separated resize factors, "
                                      "e.g. 0.5,0.75,1.0,1.25,1.5,1.75 (softmax averaged)."),
    flip: bool = typer.Option(False, "--flip", help="Also average the horizontally flipped image."),
    save_pred: Path | None = typer.Option(None, "--save-pred", help="Write colourised predictions <id>.png and error "
                                          "maps <id>_error.png (black ignored, grey correct, red wrong) here."),
    workers: int = typer.Option(2, "--workers", min=0, help="DataLoader workers per process."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: eval/ beside the model): "
                                    "metrics.json, per_class.csv, metrics.md, per_image.npz, manifest.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the results in an --out that already holds "
                                   "a finished evaluation (refused otherwise)."),
) -> None:
    """Evaluate a model export: mIoU / aAcc / mAcc and per-class IoU (mmseg convention; torchrun-ready)."""
    from repsep.engine import distributed
    from repsep.engine.evaluate import evaluate_checkpoint, metrics_table

    out = out or model.parent / "eval"
    try:
        result = evaluate_checkpoint(
            model, out, data=data, split=split, mode=mode, crop=_parse_size(crop, "--crop") if crop else None,
            stride=_parse_size(stride, "--stride") if stride else None,
            scales=_parse_scales(scales) if scales else None, flip=flip or None, save_pred=save_pred,
            num_workers=workers, overwrite=overwrite)
        main = distributed.is_main()
    finally:
        distributed.cleanup()
    if main:
        print(metrics_table(result), end="")
        print(f"results: {out}/metrics.json, per_class.csv, metrics.md, per_image.npz")


# ---- corruptions / corrupt (corruptions) --------------------------------------------------------------------

_SEVERITIES_HELP = "Severities: a range 1-5, one value 3, or a list 1,3,5 (1 = mild ... 5 = strong)."
_CORRUPTIONS_HELP = ("Comma-separated corruption names instead of the whole suite, e.g. fog,snow "
                     "(`repsep-bench corruptions list` shows them).")
_BACKEND_HELP = ("reference: the imagecorruptions package on CPU, seeded per image (the published protocol). "
                 "torch: batched torch ports (faster; falls back to reference for corruptions it lacks).")
_CORRUPT_ON_HELP = ("Where corruption runs. auto: model whenever the backend is batched (torch) and no --from-disk "
                    "is given, else workers. model: the clean images are decoded once per sweep (see --cache-gb), "
                    "then corrupted --corrupt-batch at a time on the model's device (GPU or CPU); glass_blur and "
                    "spatter, which torch lacks, still run in workers. workers: image by image in the DataLoader "
                    "workers, beside the model. The results do not depend on it on CPU; on a GPU the torch ports "
                    "draw other random pixels, so those cells are recorded as torch:cuda.")


@corruptions_app.command("list")
def corruptions_list_cmd() -> None:
    """Print every corruption with its group and the suites that contain it."""
    from corruptions.suite import ALL_CORRUPTIONS, STOCHASTIC, SUITES, group_of

    rows = [(name, group_of(name), ", ".join(s for s, names in SUITES.items() if name in names),
             "yes" if name in STOCHASTIC else "no") for name in ALL_CORRUPTIONS]
    print("| corruption | group | suites | random |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nsuites: {', '.join(f'{s} ({len(n)})' for s, n in SUITES.items())}; severities 1-5")


@corruptions_app.command("materialize")
def corruptions_materialize_cmd(
    data: str = typer.Option("synthcity", "--data", help="Dataset spec: synthcity, synthcity:PATH, cityscapes:PATH "
                             "or ade20k:PATH."),
    suite: str = typer.Option("cityscapes-c", "--suite", help="cityscapes-c / ade20k-c (the 16 of Kamann & Rother) "
                              "or all (19, adds zoom_blur, elastic_transform, pixelate)."),
    corruptions: str | None = typer.Option(None, "--corruptions", help=_CORRUPTIONS_HELP),
    severities: str = typer.Option("1-5", "--severities", help=_SEVERITIES_HELP),
    split: str = typer.Option("val", "--split", help="Dataset split to corrupt."),
    out: Path = typer.Option(Path("corrupted"), "--out", help="Folder for <corruption>/<severity>/<dataset layout>; "
                             "a rerun skips files that already exist (resume)."),
    workers: int = typer.Option(0, "--workers", min=0, help="Worker processes (0 = this process)."),
    backend: str = typer.Option("reference", "--backend", help=_BACKEND_HELP),
    seed: int = typer.Option(0, "--seed", help="Base seed; each image's seed is derived from it, the image id, the "
                             "corruption and the severity."),
) -> None:
    """Write corrupted copies of a dataset split to disk as PNG (labels are not copied; use the base dataset's)."""
    from corruptions.backends import get_backend
    from corruptions.materialize import materialize
    from corruptions.suite import parse_severities, resolve_corruptions
    from repsep.data import open_dataset

    names, levels = resolve_corruptions(suite, corruptions), parse_severities(severities)
    counts = materialize(open_dataset(data, split), names, levels, out, get_backend(backend), base_seed=seed,
                         workers=workers)
    print(f"{out}: {counts['written']} images written, {counts['skipped']} already present "
          f"({len(names)} corruptions x {len(levels)} severities)")


@app.command("corrupt")
def corrupt_cmd(
    model: Path = typer.Option(..., "--model", help="A model export (model_final.pt from `train`)."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec (default: the one the model was trained on)."),
    split: str = typer.Option("val", "--split", help="Dataset split to evaluate."),
    suite: str = typer.Option("cityscapes-c", "--suite", help="cityscapes-c / ade20k-c (the 16 of Kamann & Rother) "
                              "or all (19)."),
    corruptions: str | None = typer.Option(None, "--corruptions", help=_CORRUPTIONS_HELP),
    severities: str = typer.Option("1-5", "--severities", help=_SEVERITIES_HELP),
    backend: str = typer.Option("reference", "--backend", help=_BACKEND_HELP),
    from_disk: Path | None = typer.Option(None, "--from-disk", help="Read corrupted images written by "
                                          "`corruptions materialize` from this folder instead of corrupting."),
    reference_results: Path | None = typer.Option(None, "--reference-results", help="A reference model's corrupt "
                                                  "output folder (or robustness.json): adds CE, mCE, relative mCE."),
    num_images: int | None = typer.Option(None, "--num-images", min=1, help="Only the first N images (quick runs)."),
    workers: int = typer.Option(2, "--workers", min=0, help="DataLoader workers per process (decoding, and "
                                "corruption with --corrupt-on workers); 0 = this process. The results do not "
                                "depend on it."),
    corrupt_on: str = typer.Option("auto", "--corrupt-on", help=_CORRUPT_ON_HELP),
    corrupt_batch: int = typer.Option(8, "--corrupt-batch", min=1, help="Images corrupted together on the model's "
                                      "device (one image size per batch); the model still sees one image per "
                                      "forward pass, so results do not change. Larger is faster on a GPU until "
                                      "its memory runs out (a 1024x2048 image is 6 MB, 25 MB as float)."),
    cache_gb: float = typer.Option(8.0, "--cache-gb", min=0.0, help="Host memory (GiB per process) for the clean "
                                   "images and labels that --corrupt-on model decodes once per sweep; when they do "
                                   "not fit, every cell decodes them again (Cityscapes val: 3.9 GiB, 4.9 GiB "
                                   "pinned for a GPU). 0 = never keep them."),
    seed: int = typer.Option(0, "--seed", help="Base seed of the per-image corruption seeds."),
    out: Path = typer.Option(Path("corrupt_out"), "--out", help="Output folder; finished cells in OUT/cells are "
                             "reused when the command is run again (resume; also across --workers, --corrupt-on, "
                             "--corrupt-batch, --cache-gb)."),
) -> None:
    """Evaluate a model on clean + every (corruption, severity): mIoU per cell, mPC, rPC, CE/mCE (torchrun-ready)."""
    from corruptions.evaluate import SweepConfig, format_table, run_sweep
    from corruptions.suite import parse_severities, resolve_corruptions

    cfg = SweepConfig(model=str(model), data=data, split=split, corruptions=resolve_corruptions(suite, corruptions),
                      severities=parse_severities(severities), backend=backend,
                      from_disk=None if from_disk is None else str(from_disk),
                      reference_results=None if reference_results is None else str(reference_results),
                      num_images=num_images, base_seed=seed, workers=workers, corrupt_on=corrupt_on,
                      corrupt_batch=corrupt_batch, cache_gb=cache_gb)
    result = run_sweep(cfg, out)
    if result is not None:
        print(format_table(result, cfg.severities), end="")
        print(f"results: {out}/robustness.json, robustness.csv, robustness.md, per_image.npz")


# ---- analyze (analysis) -------------------------------------------------------------------------------------

@app.command("analyze")
def analyze_cmd(
    model: list[Path] = typer.Option(..., "--model", help="A model export (model_final.pt); repeat the option to "
                                     "compare models on the same images and token locations."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec (default: the first model's)."),
    split: str = typer.Option("val", "--split", help="Dataset split; its first N images are used."),
    num_images: int = typer.Option(100, "--num-images", min=1, help="Images analysed (N)."),
    layers: str = typer.Option("all", "--layers", help="'all' or comma-separated feature names: vit.block{i}, "
                               "pathway.stage{k}, sasm, dca, decoder_input (a model lacking one skips it)."),
    tsne_layers: str = typer.Option("all", "--tsne-layers", help="'all' (every analysed layer) or a comma-separated "
                                    "subset that gets a t-SNE embedding and figure; t-SNE is the slow part."),
    purity: float = typer.Option(0.75, "--purity", help="A patch token is labelled with its majority class when "
                                 "that class covers at least this share of the patch (void never wins); 1.0 keeps "
                                 "interior patches only, lower values add boundary patches."),
    per_class: int = typer.Option(200, "--per-class", min=1, help="Tokens sampled per class and layer for "
                                  "separation, CKA and t-SNE (seeded, identical locations for every model)."),
    hf_cutoff: float = typer.Option(0.5, "--hf-cutoff", help="High-frequency ratio: spectral energy above this "
                                    "fraction of the Nyquist radius over total (0 = everything but the mean token)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    seed: int = typer.Option(0, "--seed", help="Seed of token sampling, silhouette subsample and t-SNE."),
    out: Path = typer.Option(Path("analyze_out"), "--out", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the results in an --out that already holds "
                                   "a finished analysis (refused otherwise)."),
) -> None:
    """Over-smoothness of the features, layer by layer: pairwise cosine (all, same-class, different-class), rank
    collapse, high-frequency energy, class separation (intra/inter variance, silhouette), CKA, t-SNE, figures."""
    from analysis.run import analyze, parse_layers
    from analysis.tables import to_markdown

    tables = analyze(model, out, data=data, split=split, num_images=num_images, layers=parse_layers(layers),
                     tsne_layers=parse_layers(tsne_layers), purity=purity, per_class=per_class, seed=seed,
                     batch_size=batch_size, hf_cutoff=hf_cutoff, overwrite=overwrite)
    for table in tables:
        print(to_markdown(table))
    print(f"results: {out}/similarity.json|csv, separation.json|csv, cka.json, tsne/, figures/, summary.md")

# ---- report (reports) ---------------------------------------------------------------------------------------

@app.command("report")
def report_cmd(
    run_dirs: list[Path] = typer.Argument(..., help="train / eval / corrupt / analyze output folders (any order; the "
                                          "kind is read from each folder's manifest.json)."),
    out: Path = typer.Option(..., "--out", help="Report folder to create, e.g. reports/synthcity."),
    baseline: str | None = typer.Option(None, "--baseline", help="Model (training-run folder name) the others are "
                                        "compared with; default: the model without pathway/SASM/DCA, else the "
                                        "first one given."),
    seed: int = typer.Option(0, "--seed", help="Seed of the paired bootstrap over images."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples (95% percentile intervals)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report folder."),
) -> None:
    """Combine output folders into README.md tables (+ CSV, LaTeX booktabs), figures and a manifest.

    Tables: main (params, GFLOPs, clean mIoU single- and multi-scale), ablation ladder (baseline -> +pathway ->
    +SASM -> +DCA), robustness per corruption and group (mPC, rPC, mCE), paired-bootstrap intervals of each
    model's mIoU difference vs the baseline (clean and per corruption group), over-smoothness from analyze.
    The folder is built aside and renamed into place; regenerating it gives byte-identical tables.
    """
    from analysis.report import build_report
    from analysis.tables import to_markdown

    result = build_report(run_dirs, out, baseline=baseline, seed=seed, resamples=resamples, overwrite=overwrite)
    for table in result.tables:
        if table.stem in ("main", "ablation", "robustness_groups", "uncertainty"):
            typer.echo(to_markdown(table))
    typer.echo(f"report written to {result.out} (README.md, tables/*.csv|tex, report.json, manifest.json)")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app; a UserError becomes one stderr line and exit code 2."""
    try:
        app(args=argv, prog_name="repsep-bench")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
