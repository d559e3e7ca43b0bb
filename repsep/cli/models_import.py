"""`repsep-bench models import ...`: turn another framework's checkpoint into this project's model export."""

from __future__ import annotations

from pathlib import Path

import typer

from repsep.cli.options import parse_size

import_app = typer.Typer(help="Convert checkpoints from other frameworks into a repsep-bench model export.",
                         no_args_is_help=True)


@import_app.callback()
def _import_callback() -> None:
    """Convert checkpoints from other frameworks into a repsep-bench model export."""


@import_app.command("mmseg")
def import_mmseg_cmd(
    ckpt: Path = typer.Argument(..., help="mmsegmentation 1.x checkpoint ({'meta', 'state_dict'})."),
    arch: str = typer.Option(..., "--arch", help="upernet_vit, setr_naive, setr_pup, setr_mla, segmenter_linear "
                                                  "or segmenter_mask."),
    out: Path = typer.Option(..., "--out", help="The model export to write (e.g. model.pt)."),
    dataset: str | None = typer.Option(None, "--dataset", help="cityscapes or ade20k: the class table and "
                                       "mmseg's slide settings (default: from the class count, 19 or 150)."),
    crop: str | None = typer.Option(None, "--crop", help="HxW the model was trained at: reads a non-square "
                                    "position grid and sets the slide window (default: mmseg's for --dataset)."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec recorded in the export (e.g. "
                                    "cityscapes:/data/cityscapes); eval/corrupt --data override it."),
    overrides: list[str] = typer.Option([], "--set", help="Override a derived config field, e.g. --set "
                                        "num_heads=16 or --set taps=[10,15,20,24] (shapes cannot tell them)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Import an mmseg ViT segmenter: widths, depth, patch, grid and head channels from the weights' shapes;
    attention heads, tapped blocks, class-token use and position-embedding resize mode from the checkpoint's
    recorded config (else mmseg's config of --arch). Unused keys (auxiliary heads) are listed and recorded.
    The export works with eval, corrupt, analyze and report unchanged."""
    from repsep.errors import UserError
    from repsep.models.importers.mmseg import export_mmseg, format_summary, import_mmseg
    from repsep.models.registry import parse_overrides

    if out.exists() and not overwrite:
        raise UserError(f"--out {out}: exists (pass --overwrite to replace it)")
    if out.resolve() == ckpt.resolve():
        raise UserError(f"--out {out}: is the input checkpoint")
    size = parse_size(crop, "--crop") if crop else None
    imported = import_mmseg(ckpt, arch, crop=size, overrides=parse_overrides(overrides))
    record = export_mmseg(imported, out, ckpt, arch, dataset=dataset, crop=size, data_spec=data)
    print(format_summary(imported, record))
    print(f"wrote {out}")


@import_app.command("hf")
def import_hf_cmd(
    folder: Path = typer.Argument(..., help="A transformers save_pretrained folder (config.json + weights; "
                                  "preprocessor_config.json read when present)."),
    out: Path = typer.Option(..., "--out", help="The model export to write (e.g. model.pt)."),
    dataset: str | None = typer.Option(None, "--dataset", help="cityscapes, ade20k or synthcity: the class table "
                                       "id2label is checked against (default: from the class count, 19 or 150)."),
    label_map: Path | None = typer.Option(None, "--map", help="JSON/YAML {model label: dataset class} for labels "
                                          "named differently from the dataset's classes."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec recorded in the export (e.g. "
                                    "cityscapes:/data/cityscapes); eval/corrupt/analyze --data override it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Import a HuggingFace transformers segmentation model from a local folder (no hub access): SegFormer,
    BEiT, DPT, UperNet (ConvNeXt / Swin), Data2Vec-vision, Mask2Former, MaskFormer, OneFormer. The folder's
    normalisation is folded into the model, auxiliary heads are dropped, and the export works with eval,
    corrupt, analyze and report unchanged (features: the model's own layer names)."""
    from repsep.errors import UserError
    from repsep.models.importers.hf import format_summary, import_hf

    if out.exists() and not overwrite:
        raise UserError(f"--out {out}: exists (pass --overwrite to replace it)")
    if folder.exists() and out.resolve().is_relative_to(folder.resolve()):
        raise UserError(f"--out {out}: is inside the input folder {folder}")
    if label_map is not None and not label_map.is_file():
        raise UserError(f"--map {label_map}: file not found")
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise UserError("models import hf: needs the transformers package (pip install 'repsep-bench[hf]')"
                        ) from None
    record = import_hf(folder, out, dataset=dataset, label_map=label_map, data_spec=data)
    print(format_summary(record))
    print(f"wrote {out}")
