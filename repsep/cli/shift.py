"""`repsep-bench shift`: one model on its clean validation set and on natural-shift datasets (ACDC, Dark Zurich,
Foggy Cityscapes, ... or any dataset spec), as one table."""

from __future__ import annotations

from pathlib import Path

import typer

from repsep.cli.options import PRECISION_HELP, parse_scales, parse_size


def shift_cmd(
    model: Path = typer.Option(..., "--model", help="A model export (model_final.pt from `train`)."),
    data: list[str] = typer.Option(..., "--data", help="A natural-shift dataset spec, repeatable, one table row "
                                   "each: acdc:PATH:fog (one condition per --data gives per-condition rows and "
                                   "their mean), darkzurich:PATH, foggy_cityscapes:PATH:0.02, cityscapes:PATH, "
                                   "synthcity:PATH ... Its class table must be the model's."),
    clean_data: str | None = typer.Option(None, "--clean-data", help="The clean reference the ratios are relative "
                                          "to (default: the dataset the model was trained on, e.g. "
                                          "cityscapes:PATH)."),
    split: str = typer.Option("val", "--split", help="Split of every dataset (clean and shifted)."),
    mode: str | None = typer.Option(None, "--mode", help="whole or slide, as in `eval` (default: the model's "
                                    "training config; the same for every dataset)."),
    crop: str | None = typer.Option(None, "--crop", help="Slide window HEIGHTxWIDTH (default: the training crop)."),
    stride: str | None = typer.Option(None, "--stride", help="Slide stride HEIGHTxWIDTH (default: 2/3 of the crop)."),
    scales: str | None = typer.Option(None, "--scales", help="Multi-scale test: comma-separated resize factors."),
    flip: bool = typer.Option(False, "--flip", help="Also average the horizontally flipped image."),
    precision: str | None = typer.Option(None, "--precision", help=PRECISION_HELP),
    num_images: int | None = typer.Option(None, "--num-images", help="Evaluate a seeded subset of this many images "
                                          "of each dataset, spread over its strata (city / condition folder)."),
    subset_seed: int = typer.Option(0, "--subset-seed", help="Seed of the --num-images subsets."),
    scan: str = typer.Option("full", "--scan", help="Input check of every dataset before any work: full (every "
                             "file header and label value) or headers (file headers and sizes only)."),
    by_group: bool = typer.Option(False, "--by-group", help="Also give each dataset's mIoU per stratum (the "
                                  "dataset's group_of: condition/sequence for ACDC, the sequence for Dark Zurich, "
                                  "the city for Cityscapes), as extra rows; the mean stays over the --data "
                                  "entries. For per-condition rows give one --data acdc:PATH:<condition> each."),
    workers: int = typer.Option(2, "--workers", min=0, help="DataLoader workers per process."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: shift/ beside the model): "
                                    "shift.json, shift.csv, shift.md, per_image.npz, manifest.json and one eval "
                                    "folder per dataset (clean/, acdc-fog/, ...). A rerun reuses every finished "
                                    "dataset evaluated with the same settings and continues an unfinished one."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write shift.json to this file (a file this "
                                         "command wrote before is replaced; any other file is refused)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute every dataset (each finished one is "
                                   "rebuilt beside it and swapped in); needed when the settings changed."),
) -> None:
    """Natural-shift table: clean mIoU, mIoU per shifted dataset / condition, their mean, and each as a percentage
    of clean (torchrun-ready).

    Every dataset is evaluated exactly as `eval --data SPEC` would (same inference settings, same metrics, the
    per-image areas kept for the report's paired bootstrap). Give `--out` to `report` to show the table beside the
    Cityscapes-C table.
    """
    from repsep.engine import distributed
    from repsep.engine.shift import run_shift
    from repsep.engine.shift_format import shift_table
    from repsep.json_target import check_json_target, write_json_target

    out = out or model.parent / "shift"
    if json_out is not None:
        check_json_target(json_out, "shift", inputs=[model])
    try:
        result = run_shift(
            model, out, data=list(data), clean_data=clean_data, split=split, mode=mode,
            crop=parse_size(crop, "--crop") if crop else None,
            stride=parse_size(stride, "--stride") if stride else None,
            scales=parse_scales(scales) if scales else None, flip=flip or None, num_images=num_images,
            subset_seed=subset_seed, scan=scan, by_group=by_group, num_workers=workers, overwrite=overwrite,
            precision=precision)
    finally:
        distributed.cleanup()
    if result is None:
        return
    if json_out is not None:
        write_json_target(json_out, result, "shift", inputs=[model])
    print(shift_table(result), end="")
    print(f"results: {out}/shift.json, shift.csv, shift.md, per_image.npz")
