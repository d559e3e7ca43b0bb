"""`repsep-bench train`: train a segmenter from a recipe."""

from __future__ import annotations

from pathlib import Path

import typer


def train_cmd(
    config: str = typer.Argument("synthcity_tiny_rsseg", help="A YAML recipe: a path, or the name of a bundled one "
                                 "(synthcity_tiny_{baseline,rsseg}: CPU-sized on SynthCity; cityscapes_vit_{b,l}_*, "
                                 "ade20k_vit_{b,l}_*, cityscapes_pvt_v2_b2_rsseg: the standard GPU recipes)."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default runs/<recipe name>): config.yaml, "
                                    "metrics.jsonl, checkpoint_last.pt, model_final.pt, manifest.json, DONE."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoint_last.pt; the "
                                "final weights equal an uninterrupted run's. Needs the same config (worker count and "
                                "intervals may change). A finished run is left as is."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the previous run in --out: the new run is "
                                   "trained in a hidden folder beside it and swapped in only after it succeeds (a "
                                   "failed run leaves the old one as it was). Files train did not write are never "
                                   "touched: they are an error."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, KEY=VALUE with a dotted key and a "
                                   "YAML value, e.g. --set optim.lr=1e-4 --set data.crop=[512,512]. Repeatable."),
    stop_at: int | None = typer.Option(None, "--stop-at", min=1, help="Stop after this iteration with a checkpoint "
                                       "(for time-limited job slots); continue later with --resume."),
) -> None:
    """Train a segmenter from a recipe (AdamW, layer-wise lr decay, poly schedule; torchrun-ready, exact resume).

    Effective batch = data.batch_size x accum_steps x number of processes.

    Before any training the whole train and val splits are checked (headers, sizes, every label value);
    --set data.scan=headers skips the label decode.

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
