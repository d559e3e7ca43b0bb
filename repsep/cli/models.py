"""`repsep-bench models ...`: the model registry, a model's size and cost."""

from __future__ import annotations

from pathlib import Path

import typer

from repsep.cli.options import MODEL_SET_HELP

models_app = typer.Typer(help="List the model registry and inspect a model's size and cost.", no_args_is_help=True)


@models_app.command("list")
def models_list_cmd(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the list as JSON to this file "
                                       "({\"models\": [...]}; only a file this command wrote is replaced)."),
) -> None:
    """The named models, their size presets and RSSeg switches.

    baseline_* = backbone + RSSeg's decoder without any separation part; rsseg_* = + decoupled local pathway,
    SASM and DCA, each switchable (--set pathway=false ...) for the ablation ladder.
    """
    from repsep.json_target import check_json_target, write_json_target
    from repsep.models import MODELS, SIZES, model_config

    if json_out is not None:
        check_json_target(json_out, "models list")

    rows = []
    for name, factory in MODELS.items():
        family = name.split("_")[1] if name.split("_")[1] in SIZES else "vit"  # baselines: plain-ViT sizes
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
        write_json_target(json_out, {"models": rows}, "models list")


@models_app.command("info")
def models_info_cmd(
    name: str = typer.Argument(..., help="Model name (`repsep-bench models list`)."),
    size: str = typer.Option("512x512", "--size", help="Input size HxW for the GMACs count (640 = 640x640)."),
    overrides: list[str] = typer.Option([], "--set", help=MODEL_SET_HELP),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the numbers as JSON to this file "
                                       "(only a file this command wrote is replaced)."),
) -> None:
    """Deployed parameters (backbone / decoder, training-only aux heads apart) and inference GMACs of a model.

    GMACs = 10^9 multiply-adds (what mmseg/fvcore print as "GFLOPs"), one inference pass, deployed, batch 1;
    params (M, deployed) = the deployed model's parameters. Counted on the meta device (no weights, so even ViT-L
    is quick).
    """
    from repsep.json_target import check_json_target, write_json_target
    from repsep.models.profile import format_info, model_info, parse_image_size
    from repsep.models.registry import model_config, parse_overrides

    if json_out is not None:
        check_json_target(json_out, "models info")

    cfg = model_config(name, **parse_overrides(overrides))
    info = model_info(cfg, parse_image_size(size))
    print(format_info(info))
    from repsep.models.baselines.mmseg_costs import MMSEG_COSTS

    if (cfg.name, cfg.size) in MMSEG_COSTS:  # the recognisable baselines: mmseg's own build, measured the same way
        p, g = MMSEG_COSTS[(cfg.name, cfg.size)]
        print(f"\nmmseg 1.2.2's own build ({cfg.name}, ViT-{cfg.size}, 150 classes, 512x512, grid 32x32): "
              f"{p:.2f} M params (deployed), {g:.1f} GMACs (scripts/baseline_costs.py)")
    if json_out is not None:
        write_json_target(json_out, info, "models info")
