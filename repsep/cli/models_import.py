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
