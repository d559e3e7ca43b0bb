"""`repsep-bench data ...`: generate SynthCity, check a dataset."""

from __future__ import annotations

import typer

from repsep.cli.options import parse_size
from repsep.errors import UserError

data_app = typer.Typer(help="Generate and check datasets (SynthCity, Cityscapes, ADE20K).", no_args_is_help=True)


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
    root = generate(out, num_train, num_val, size=parse_size(size, "--size"), seed=seed, layout=layout,
                    knobs=knobs, workers=workers or None, progress=True)
    print(f"SynthCity ({layout}, {num_train} train + {num_val} val, {size}, seed {seed}) in {root} "
          f"[{time.perf_counter() - start:.1f} s]; parameters in {root / META_FILE}")


@data_app.command("check")
def data_check(
    path: str = typer.Argument(..., help="Dataset root: Cityscapes layout (leftImg8bit/, gtFine/) or ADE20K "
                               "(images/, annotations/)."),
    layout: str = typer.Option("cityscapes", help="cityscapes (also SynthCity folders) or ade20k."),
    split: str = typer.Option("val", help="Split to check: train or val (ADE20K: training/validation folders)."),
    json_out: str = typer.Option(None, "--json", help="Also write the histogram as JSON to this file (a file this "
                                 "command wrote before is replaced, any other file is refused)."),
) -> None:
    """Validate every image/label pair of a split and print a per-class pixel histogram.

    Fails with exit code 2 and one line naming the file on: missing folders, images without labels, unreadable or
    truncated files, labels that are not 8-bit single-channel, of another size than the image, or with values
    outside the class table.
    """
    from repsep.data.check import class_histogram, format_histogram
    from repsep.json_target import check_json_target, write_json_target

    if layout not in ("cityscapes", "ade20k"):
        raise UserError(f"--layout {layout}: choose cityscapes or ade20k")
    from repsep.data import open_dataset

    if json_out:  # refused before the scan, not after it
        check_json_target(json_out, "data check", inputs=[path])
    hist = class_histogram(open_dataset(f"{layout}:{path}", split), progress=True)
    print(format_histogram(hist))
    if json_out:
        write_json_target(json_out, hist, "data check", inputs=[path])
