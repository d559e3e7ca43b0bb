"""Throughput and peak memory of the baseline ViT segmenter vs RSSeg: forward and forward+backward.

    .venv/bin/python scripts/bench_model.py --device cuda --sizes T,S,B,L --modes eager,compile --dtypes fp32,bf16
    .venv/bin/python scripts/bench_model.py --device cpu --sizes tiny --size 128x256 --iters 2   # smoke run on CPU

For every (ViT size, precision, execution mode, memory format) it builds ``baseline_vit`` and ``rsseg_vit`` from the
registry (random init, 19 classes, --size input), times ``--iters`` steps after ``--warmup`` steps and prints images
per second for inference (eval, deployed, no grad) and training (train mode, forward + losses + backward), peak GPU
memory (CUDA only) and the RSSeg / baseline ratios. ``--channels-last`` adds runs with channels_last inputs and
weights (it helps the convolutional pathway and decoder; the ViT itself is all matmuls). bf16 runs use autocast.
"""

from __future__ import annotations

import argparse
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build(name: str, size: str, hw: tuple[int, int], device: torch.device) -> torch.nn.Module:
    """Registry model ``name`` at ViT ``size`` (random init, 19 classes, input ``hw``), initialised on ``device``
    (a ViT-L's random init takes seconds on the CPU)."""
    from repsep.models import build_model
    from repsep.models.registry import model_config

    with torch.device(device):
        model = build_model(model_config(name, size=size, img_size=hw, num_classes=19))
    return model.to(device)


def time_steps(model: torch.nn.Module, hw: tuple[int, int], batch: int, device: torch.device, mode: str, dtype: str,
               channels_last: bool, train: bool, warmup: int, iters: int, compile_backend: str = "inductor") -> dict:
    """Images/s, peak memory (MiB, CUDA only) and warm-up seconds (the compile, in ``compile`` mode) of ``model``
    as it is (train mode for ``train``, else eval under no_grad); ``warmup`` >= 1 untimed steps first."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    images = torch.randn(batch, 3, *hw, device=device).contiguous(memory_format=fmt)
    target = torch.randint(0, 19, (batch, *hw), device=device)
    run = torch.compile(model, backend=compile_backend) if mode == "compile" else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step() -> None:
        if train:
            with autocast:
                loss = model.losses(run(images), target)["loss"]
            loss.backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), autocast:
                run(images)

    start = time.perf_counter()
    for _ in range(max(1, warmup)):
        step()
    _sync(device)
    warmup_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else float("nan")
    return {"mode": mode, "dtype": dtype, "channels_last": channels_last, "pass": "fwd+bwd" if train else "fwd",
            "images_per_s": batch / seconds, "peak_mib": peak, "warmup_s": warmup_s}


def bench(name: str, size: str, hw: tuple[int, int], batch: int, device: torch.device, mode: str, dtype: str,
          channels_last: bool, train: bool, warmup: int, iters: int) -> dict:
    """One measurement: images/s and peak memory (MiB, CUDA only) of one model in one setting."""
    model = build(name, size, hw, device)
    model = model.train() if train else model.deploy().eval()
    return {"model": name, "size": size, **time_steps(model, hw, batch, device, mode, dtype, channels_last, train,
                                                     warmup, iters)}


def main() -> None:
    from repsep.io import atomic_write_json
    from repsep.models.profile import parse_image_size

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="T,S,B", help="ViT sizes from the registry: tiny, T, S, B, L")
    parser.add_argument("--size", default="512x1024", help="input HxW")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--modes", default="eager", help="eager and/or compile (torch.compile)")
    parser.add_argument("--dtypes", default="fp32", help="fp32 and/or bf16 (autocast)")
    parser.add_argument("--channels-last", action="store_true", help="also run with channels_last memory format")
    parser.add_argument("--passes", default="fwd,fwd+bwd", help="fwd and/or fwd+bwd")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()

    device = torch.device(args.device)
    hw = parse_image_size(args.size)
    rows = []
    print(f"device {device}, input {hw[0]}x{hw[1]}, batch {args.batch}")
    print("| size | pass | mode | dtype | channels_last | baseline img/s | RSSeg img/s | RSSeg/baseline speed "
          "| baseline peak MiB | RSSeg peak MiB | memory ratio |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        for train in [p == "fwd+bwd" for p in args.passes.split(",")]:
            for mode in args.modes.split(","):
                for dtype in args.dtypes.split(","):
                    for cl in (False, True) if args.channels_last else (False,):
                        pair = [bench(m, size, hw, args.batch, device, mode, dtype, cl, train, args.warmup, args.iters)
                                for m in ("baseline_vit", "rsseg_vit")]
                        rows += pair
                        base, rs = pair
                        print(f"| {size} | {base['pass']} | {mode} | {dtype} | {cl} | {base['images_per_s']:.2f} | "
                              f"{rs['images_per_s']:.2f} | {rs['images_per_s'] / base['images_per_s']:.2f} | "
                              f"{base['peak_mib']:.0f} | {rs['peak_mib']:.0f} | "
                              f"{rs['peak_mib'] / base['peak_mib']:.2f} |", flush=True)
    if args.json:
        atomic_write_json(args.json, {"device": str(device), "size": list(hw), "batch": args.batch, "rows": rows})


if __name__ == "__main__":
    main()
