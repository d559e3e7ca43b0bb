"""`repsep-bench corruptions ...` and `repsep-bench corrupt`: the corruption suite and the robustness sweep."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from repsep.cli.options import BACKEND_HELP, CORRUPT_ON_HELP, CORRUPTIONS_HELP, PRECISION_HELP, SEVERITIES_HELP
from repsep.errors import UserError


@contextmanager
def os_errors_as_user_errors(out: Path) -> Iterator[None]:
    """An OS error the library did not name (disk full while saving a marker, ...) as one error line naming the
    file (or the output folder); the files written so far are kept."""
    try:
        yield
    except OSError as e:
        raise UserError(f"{e.filename or out}: {e.strerror or e}") from None


corruptions_app = typer.Typer(help="The corruption suite: list it, write corrupted datasets to disk.",
                              no_args_is_help=True)


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
    corruptions: str | None = typer.Option(None, "--corruptions", help=CORRUPTIONS_HELP),
    severities: str = typer.Option("1-5", "--severities", help=SEVERITIES_HELP),
    split: str = typer.Option("val", "--split", help="Dataset split to corrupt."),
    out: Path = typer.Option(Path("corrupted"), "--out", help="Folder for <corruption>/<severity>/<dataset layout>; "
                             "a rerun with the same dataset, seed and backend skips files that already exist "
                             "(resume) and may add corruptions; other settings need --overwrite."),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0 = this process)."),
    backend: str = typer.Option("reference", "--backend", help=BACKEND_HELP),
    seed: int = typer.Option(0, "--seed", help="Base seed; each image's seed is derived from it, the image id, the "
                             "corruption and the severity."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a tree made with another dataset, seed or "
                                   "backend (the new one is built beside it and swapped in when complete)."),
) -> None:
    """Write corrupted copies of a dataset split to disk as PNG (labels are not copied; use the base dataset's)."""
    from corruptions.backends import get_backend
    from corruptions.evaluate import MAX_SEED, MAX_WORKERS
    from corruptions.materialize import materialize
    from corruptions.suite import parse_severities, resolve_corruptions
    from repsep.data import open_dataset

    if not 0 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers {workers}: must be between 0 and {MAX_WORKERS}")
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed {seed}: must be between 0 and 2**63 - 1")
    names, levels = resolve_corruptions(suite, corruptions), parse_severities(severities)
    with os_errors_as_user_errors(out):
        counts = materialize(open_dataset(data, split), names, levels, out, get_backend(backend), base_seed=seed,
                             workers=workers, overwrite=overwrite)
    print(f"{out}: {counts['written']} images written, {counts['skipped']} already present "
          f"({len(names)} corruptions x {len(levels)} severities)")


def corrupt_cmd(
    model: Path = typer.Option(..., "--model", help="A model export (model_final.pt from `train`)."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec (default: the one the model was trained on)."),
    split: str = typer.Option("val", "--split", help="Dataset split to evaluate."),
    suite: str = typer.Option("cityscapes-c", "--suite", help="cityscapes-c / ade20k-c (the 16 of Kamann & Rother) "
                              "or all (19)."),
    corruptions: str | None = typer.Option(None, "--corruptions", help=CORRUPTIONS_HELP),
    severities: str = typer.Option("1-5", "--severities", help=SEVERITIES_HELP),
    backend: str = typer.Option("reference", "--backend", help=BACKEND_HELP),
    from_disk: Path | None = typer.Option(None, "--from-disk", help="Read corrupted images written by "
                                          "`corruptions materialize` from this folder instead of corrupting (its "
                                          "dataset, image ids and seed must be this run's)."),
    reference_results: Path | None = typer.Option(None, "--reference-results", help="A reference model's corrupt "
                                                  "output folder (or robustness.json): adds CE, mCE, relative mCE."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Use a --reference-results swept with other "
                                        "settings (images, seed, severities, backends, inference); warns instead "
                                        "of refusing."),
    mode: str | None = typer.Option(None, "--mode", help="whole or slide, as in `eval` (default: the model's "
                                    "training config)."),
    crop: str | None = typer.Option(None, "--crop", help="Slide window HEIGHTxWIDTH (default: the training crop)."),
    stride: str | None = typer.Option(None, "--stride", help="Slide stride HEIGHTxWIDTH (default: 2/3 of the crop)."),
    scales: str | None = typer.Option(None, "--scales", help="Multi-scale test: comma-separated resize factors."),
    flip: bool = typer.Option(False, "--flip", help="Also average the horizontally flipped image."),
    precision: str | None = typer.Option(None, "--precision", help=PRECISION_HELP),
    num_images: int | None = typer.Option(None, "--num-images", help="Only N images (quick runs): a seeded subset "
                                          "spread over the split's cities / scenes (--subset-seed), not the first N."),
    subset_seed: int = typer.Option(0, "--subset-seed", help="Seed of the --num-images subset."),
    scan: str = typer.Option("full", "--scan", help="Input check before the first cell: full (every image header "
                             "and label value of the evaluated images) or headers (no label decode)."),
    workers: int = typer.Option(2, "--workers", help="DataLoader workers per process (decoding, and corruption "
                                "with --corrupt-on workers); 0 = this process. The results do not depend on it."),
    corrupt_on: str = typer.Option("auto", "--corrupt-on", help=CORRUPT_ON_HELP),
    corrupt_batch: int = typer.Option(8, "--corrupt-batch", help="Images corrupted together on the model's "
                                      "device (one image size per batch, 1..4096); the model still sees one image "
                                      "per forward pass, so results do not change. Larger is faster on a GPU until "
                                      "its memory runs out (a 1024x2048 image is 6 MB, 25 MB as float)."),
    cache_gb: float = typer.Option(8.0, "--cache-gb", help="Host memory (GiB per process, finite, >= 0) for the "
                                   "clean images and labels that --corrupt-on model decodes once per sweep; when "
                                   "they do not fit, every cell decodes them again (Cityscapes val: 3.9 GiB, 4.9 "
                                   "GiB pinned for a GPU). 0 = never keep them."),
    seed: int = typer.Option(0, "--seed", help="Base seed of the per-image corruption seeds."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: corrupt/ beside the model); "
                                    "finished cells in OUT/cells are reused when the command is run again with the "
                                    "same settings (resume; also across --workers, --corrupt-on, --corrupt-batch, "
                                    "--cache-gb)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a result made with other settings (rebuilt "
                                   "beside it, swapped in when the sweep succeeded)."),
) -> None:
    """Evaluate a model on clean + every (corruption, severity): mIoU per cell, mPC, rPC, CE/mCE (torchrun-ready)."""
    from corruptions.evaluate import SweepConfig, check_options, format_table, run_sweep
    from corruptions.suite import parse_severities, resolve_corruptions
    from repsep.cli.options import parse_scales, parse_size

    out = out or model.parent / "corrupt"
    cfg = SweepConfig(model=str(model), data=data, split=split, corruptions=resolve_corruptions(suite, corruptions),
                      severities=parse_severities(severities), backend=backend,
                      from_disk=None if from_disk is None else str(from_disk),
                      reference_results=None if reference_results is None else str(reference_results),
                      allow_mismatch=allow_mismatch,
                      num_images=num_images, subset_seed=subset_seed, base_seed=seed, mode=mode,
                      crop=parse_size(crop, "--crop") if crop else None,
                      stride=parse_size(stride, "--stride") if stride else None,
                      scales=parse_scales(scales) if scales else None, flip=flip or None, precision=precision,
                      workers=workers,
                      corrupt_on=corrupt_on, corrupt_batch=corrupt_batch, cache_gb=cache_gb, scan=scan)
    check_options(cfg)
    with os_errors_as_user_errors(out):
        result = run_sweep(cfg, out, overwrite=overwrite)
    if result is not None:
        print(format_table(result, cfg.severities), end="")
        print(f"results: {out}/robustness.json, robustness.csv, robustness.md, per_image.npz")
