"""`repsep-bench data ...`: generate SynthCity, check a dataset."""

from __future__ import annotations

import typer

from repsep.cli.options import parse_size
from repsep.errors import UserError

data_app = typer.Typer(help="Generate, check and convert datasets (SynthCity, Cityscapes, ADE20K, ACDC, Dark Zurich, "
                       "Foggy / Rain Cityscapes, Pascal Context 59, COCO-Stuff).", no_args_is_help=True)


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
                               "images/ JPEGs + annotations/ (0 = other, 1..150), open with ade20k:PATH. acdc, "
                               "darkzurich, foggy_cityscapes, rain_cityscapes, pascal_context59, coco_stuff164k, "
                               "coco_stuff10k: SynthCity scenes in that dataset's official layout (ACDC: --num-train/"
                               "--num-val per condition; Dark Zurich: val only), open with <layout>:PATH."),
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

    from repsep.data.synthcity import LAYOUTS, META_FILE, SceneKnobs, generate

    if layout not in LAYOUTS:
        from repsep.data.fixtures import META_FILE as FIXTURE_META
        from repsep.data.fixtures import write_fixture

        start = time.perf_counter()
        root = write_fixture(out, layout, num_train, num_val, size=parse_size(size, "--size"), seed=seed)
        print(f"SynthCity scenes in the {layout} layout ({num_train} train + {num_val} val, {size}, seed {seed}) in "
              f"{root} [{time.perf_counter() - start:.1f} s]; open with {layout}:{root}; parameters in "
              f"{root / FIXTURE_META}")
        return
    knobs = SceneKnobs(texture_contrast=texture_contrast, object_density=object_density, thin_share=thin_share,
                       lighting_range=lighting_range)
    start = time.perf_counter()
    root = generate(out, num_train, num_val, size=parse_size(size, "--size"), seed=seed, layout=layout,
                    knobs=knobs, workers=workers or None, progress=True)
    print(f"SynthCity ({layout}, {num_train} train + {num_val} val, {size}, seed {seed}) in {root} "
          f"[{time.perf_counter() - start:.1f} s]; parameters in {root / META_FILE}")


@data_app.command("check")
def data_check(
    path: str = typer.Argument(..., help="Dataset root in one of the layouts of --layout."),
    layout: str = typer.Option("auto", help="auto (told from the folders; a root that holds several layouts is "
                               "refused with the choices), cityscapes (also SynthCity folders), ade20k, "
                               "acdc[:fog|night|rain|snow|all], darkzurich, foggy_cityscapes[:0.005|0.01|0.02], "
                               "rain_cityscapes, pascal_context59, coco_stuff164k or coco_stuff10k."),
    split: str = typer.Option("val", help="Split to check: train or val (ADE20K: training/validation folders; "
                              "COCO-Stuff: train2017/val2017, train2014/test2014)."),
    json_out: str = typer.Option(None, "--json", help="Also write the histogram as JSON to this file (a file this "
                                 "command wrote before is replaced, any other file is refused)."),
) -> None:
    """Validate every image/label pair of a split and print a per-class pixel histogram, the images that are not RGB
    on disk (converted when read) and the images without a labelled pixel.

    Fails with exit code 2 and one line naming the file on: missing folders, images without labels, unreadable or
    truncated files, labels that are not 8-bit single-channel, of another size than the image, or with values
    outside the class table.
    """
    from repsep.data import open_dataset
    from repsep.data.check import class_histogram, format_histogram
    from repsep.data.detect import LAYOUT_CHOICES, resolve_layout
    from repsep.json_target import check_json_target, write_json_target

    spec, detected = resolve_layout(path, layout)
    if json_out:  # refused before the scan, not after it
        check_json_target(json_out, "data check", inputs=[path])
    try:
        dataset = open_dataset(spec, split)
    except UserError as e:
        if detected:
            raise
        raise UserError(f"{e} (no known layout found in {path}; name one with --layout: "
                        f"{', '.join(LAYOUT_CHOICES)})") from None
    hist = class_histogram(dataset, progress=True)
    hist["layout"] = spec.partition(":")[0]
    print(f"layout: {hist['layout']}" + ("" if layout != "auto" else " (detected)"))
    print(format_histogram(hist))
    if json_out:
        write_json_target(json_out, hist, "data check", inputs=[path])


@data_app.command("convert")
def data_convert(
    path: str = typer.Argument(..., help="Root of the official COCO-Stuff download: 164k: images/ + annotations/"
                               "{train2017,val2017}/*.png (stuffthingmaps); 10k: images/*.jpg, annotations/*.mat, "
                               "imageLists/{train,test}.txt."),
    layout: str = typer.Option(..., help="coco_stuff164k or coco_stuff10k."),
    out: str = typer.Option(None, "--out", help="Where to write (default: PATH itself, as mmseg's converters do); "
                            "only new *_labelTrainIds.png files (and, for 10k or another --out, the images as links "
                            "or copies) are added, nothing is deleted."),
    overwrite: bool = typer.Option(False, help="Rewrite label files that are already there (default: keep them, so "
                                   "a rerun continues where it stopped). Only files this command wrote and nobody "
                                   "changed since (their sha256 is in OUT/.repsep-bench-convert.jsonl) are "
                                   "rewritten; any other is refused before anything is written."),
) -> None:
    """Convert official COCO-Stuff annotations into the *_labelTrainIds.png that mmseg's converters write."""
    from repsep.data.convert import convert
    from repsep.progress import progress_bar

    written = sum(1 for _ in progress_bar(convert(layout, path, out, overwrite), desc="convert", unit="img"))
    print(f"{layout}: wrote {written} label files into {out or path}; open with {layout}:{out or path}")
