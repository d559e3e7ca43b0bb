"""`repsep-bench score`: robustness tables from prediction PNGs written by any external tool."""

from __future__ import annotations

from pathlib import Path

import typer

from repsep.cli.options import CORRUPTIONS_HELP, SEVERITIES_HELP

SCORE_HELP = """Score prediction PNGs made by any tool on the clean images and on a materialized corrupted set
(`repsep-bench corruptions materialize`): mIoU per cell, mPC, rPC, CE/mCE, per-image areas for the bootstrap,
written as a `corrupt` result that `report` reads beside other models.

\b
Layout of --pred (it follows the materialized tree's):
  PRED/clean/<rel>                    prediction on the clean image
  PRED/<corruption>/<severity>/<rel>  prediction on TREE/<corruption>/<severity>/<rel>

<rel> is the image's path relative to the dataset root with suffix .png, as in the tree (e.g.
leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png). Each file is an 8-bit single-channel PNG
(mode L or P) of the label's size holding train ids 0..K-1 (with --label-ids: Cityscapes label ids, mapped by the
official table). Every header is checked before scoring: the first missing, mis-sized or multi-channel prediction
is one error line. The result's model_sha256 is the sha256 over the sorted "<path> TAB <sha256 of the file>" lines
of the scored predictions."""


def score_cmd(
    pred: Path = typer.Option(..., "--pred", help="Folder of prediction PNGs in the layout above."),
    data: str = typer.Option(..., "--data", help="Dataset spec the predictions are for: cityscapes:PATH, "
                             "ade20k:PATH, synthcity, synthcity:PATH (labels are read from it)."),
    split: str = typer.Option("val", "--split", help="Dataset split."),
    suite: str = typer.Option("cityscapes-c", "--suite", help="cityscapes-c / ade20k-c (16) or all (19)."),
    corruptions: str | None = typer.Option(None, "--corruptions", help=CORRUPTIONS_HELP),
    severities: str = typer.Option("1-5", "--severities", help=SEVERITIES_HELP),
    from_disk: Path | None = typer.Option(None, "--from-disk", help="The materialized tree the predictions were "
                                          "made from: checked against --data (dataset, image ids, finished "
                                          "cells); its base seed and backends are recorded for comparability."),
    seed: int = typer.Option(0, "--seed", help="Base seed of the corrupted set, recorded (without --from-disk)."),
    backend: str = typer.Option("reference", "--backend", help="Backend that corrupted the set, recorded "
                                "(without --from-disk): reference or torch."),
    label_ids: bool = typer.Option(False, "--label-ids", help="Predictions hold Cityscapes label ids (e.g. 7 = "
                                   "road, 26 = car), mapped to train ids; ids of unevaluated classes are refused."),
    num_images: int | None = typer.Option(None, "--num-images", help="Score the seeded subset of N images that "
                                          "`corrupt --num-images N --subset-seed S` evaluates."),
    subset_seed: int = typer.Option(0, "--subset-seed", help="Seed of the --num-images subset."),
    reference_results: Path | None = typer.Option(None, "--reference-results", help="A reference model's corrupt "
                                                  "output folder (or robustness.json): adds CE, mCE, relative mCE."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Use a --reference-results swept with "
                                        "other settings; warns instead of refusing."),
    mode: str = typer.Option("whole", "--mode", help="Inference the external tool used, recorded for "
                             "comparability (not checked): whole or slide."),
    crop: str | None = typer.Option(None, "--crop", help="Its slide window HEIGHTxWIDTH (recorded)."),
    stride: str | None = typer.Option(None, "--stride", help="Its slide stride HEIGHTxWIDTH (recorded)."),
    scales: str | None = typer.Option(None, "--scales", help="Its test scales, comma-separated (recorded)."),
    flip: bool = typer.Option(False, "--flip", help="It averaged flipped images (recorded)."),
    precision: str = typer.Option("fp32", "--precision", help="The precision the external tool ran its model in: "
                                  "fp32, bf16 or fp16 (recorded, compared with other results; a default CUDA "
                                  "`corrupt` sweep is bf16)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: PRED-score beside --pred); an "
                                    "owned corrupt folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished result (built beside it, "
                                   "swapped in when scoring succeeded)."),
) -> None:
    from corruptions.outputs import format_table
    from corruptions.score import ScoreConfig, score_predictions
    from corruptions.suite import parse_severities, resolve_corruptions
    from repsep.cli.corrupt import os_errors_as_user_errors
    from repsep.cli.options import parse_scales, parse_size
    from repsep.engine.precision import check_precision

    check_precision(precision)

    out = out or pred.parent / f"{pred.name}-score"
    cfg = ScoreConfig(pred=str(pred), data=data, split=split, corruptions=resolve_corruptions(suite, corruptions),
                      severities=parse_severities(severities), from_disk=None if from_disk is None else str(from_disk),
                      base_seed=seed, backend=backend, label_ids=label_ids, num_images=num_images,
                      subset_seed=subset_seed,
                      reference_results=None if reference_results is None else str(reference_results),
                      allow_mismatch=allow_mismatch, mode=mode, crop=parse_size(crop, "--crop") if crop else None,
                      stride=parse_size(stride, "--stride") if stride else None,
                      scales=parse_scales(scales) if scales else (1.0,), flip=flip, precision=precision)
    with os_errors_as_user_errors(out):
        result = score_predictions(cfg, out, overwrite=overwrite)
    print(format_table(result, cfg.severities), end="")
    print(f"results: {out}/robustness.json, robustness.csv, robustness.md, per_image.npz")


score_cmd.__doc__ = SCORE_HELP
