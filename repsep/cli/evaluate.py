"""`repsep-bench eval`: evaluate a model export on a dataset split."""

from __future__ import annotations

from pathlib import Path

import typer

from repsep.cli.options import PRECISION_HELP, parse_scales, parse_size


def eval_cmd(
    model: Path = typer.Option(..., "--model", help="A model export (model_final.pt from `train`)."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec: cityscapes:PATH, ade20k:PATH, synthcity, "
                                    "synthcity:PATH (default: the one the model was trained on)."),
    split: str = typer.Option("val", "--split", help="Dataset split to evaluate."),
    mode: str | None = typer.Option(None, "--mode", help="whole (one pass per image) or slide (windows of --crop "
                                    "every --stride, mmseg slide_inference; standard for plain ViTs on large "
                                    "images). Default: the model's training config."),
    crop: str | None = typer.Option(None, "--crop", help="Slide window HEIGHTxWIDTH, e.g. 768x768 (default: the "
                                    "run's eval crop, else its training crop)."),
    stride: str | None = typer.Option(None, "--stride", help="Slide stride HEIGHTxWIDTH, e.g. 512x512 (default: "
                                      "the run's, else 2/3 of the crop)."),
    scales: str | None = typer.Option(None, "--scales", help="Multi-scale test: comma-separated resize factors, "
                                      "e.g. 0.5,0.75,1.0,1.25,1.5,1.75 (softmax averaged)."),
    flip: bool = typer.Option(False, "--flip", help="Also average the horizontally flipped image."),
    precision: str | None = typer.Option(None, "--precision", help=PRECISION_HELP),
    num_images: int | None = typer.Option(None, "--num-images", help="Evaluate a seeded subset of this many "
                                          "images, spread over the split (stratified by city / scene folder)."),
    subset_seed: int = typer.Option(0, "--subset-seed", help="Seed of the --num-images subset."),
    scan: str = typer.Option("full", "--scan", help="Input check before work: full (every file header and every "
                             "label's values) or headers (file headers and sizes only, faster)."),
    save_pred: Path | None = typer.Option(None, "--save-pred", help="Write colourised predictions <id>.png and error "
                                          "maps <id>_error.png (black ignored, grey correct, red wrong) here; "
                                          "the folder must be new, empty or hold predictions of repsep-bench."),
    workers: int = typer.Option(2, "--workers", min=0, help="DataLoader workers per process."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: eval/ beside the model): "
                                    "metrics.json, per_class.csv, metrics.md, per_image.npz, manifest.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished evaluation in --out (and finished "
                                   "predictions in --save-pred); an unfinished one is continued without it."),
) -> None:
    """Evaluate a model export: mIoU / aAcc / mAcc and per-class IoU (mmseg convention; torchrun-ready).

    An interrupted or failed evaluation keeps the per-image results of every finished chunk in --out; rerunning
    the same command continues from them and gives exactly the metrics of an uninterrupted run.
    """
    from repsep.engine import distributed
    from repsep.engine.eval_format import metrics_table
    from repsep.engine.evaluate import evaluate_checkpoint

    out = out or model.parent / "eval"
    try:
        result = evaluate_checkpoint(
            model, out, data=data, split=split, mode=mode, crop=parse_size(crop, "--crop") if crop else None,
            stride=parse_size(stride, "--stride") if stride else None,
            scales=parse_scales(scales) if scales else None, flip=flip or None, save_pred=save_pred,
            num_workers=workers, overwrite=overwrite, num_images=num_images, subset_seed=subset_seed, scan=scan,
            precision=precision)
        main = distributed.is_main()
    finally:
        distributed.cleanup()
    if main:
        print(metrics_table(result), end="")
        print(f"results: {out}/metrics.json, per_class.csv, metrics.md, per_image.npz")
