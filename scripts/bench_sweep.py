"""How model-bound is a `corrupt` sweep? Sweep wall time / model-only inference time on the same images.

The model-only time is the forward passes alone: the clean images are decoded, transformed and moved to the device
once, then ``predict`` runs on them as many times as the sweep has cells (clean + corruptions x severities). The
sweep time is a full ``run_sweep`` (data loading, corruption, inference, metrics, writing) into a fresh folder, once
per (backend, ``--corrupt-on`` mode); ``model`` needs a batched backend (torch), so (reference, model) is skipped.
A ratio of 1.0 means the sweep costs no more than its forward passes. The last column is measured inside the
sweep itself: the time spent in the model's forward during that very run (forward hooks, synchronised on
CUDA), so both terms of the ratio see the same machine load. With both backends it then prints the
benchmark-level fidelity check: the model's mIoU under each corruption with the reference and the torch backend.

    python scripts/bench_sweep.py --model runs/synthcity_tiny_rsseg/model_final.pt --num-images 20 \\
        --corruptions gaussian_noise,defocus_blur,fog,contrast --severities 1-5 --backends reference,torch \\
        --modes workers,model
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager

import torch

from corruptions.evaluate import SweepConfig, run_sweep
from corruptions.suite import parse_severities, resolve_corruptions
from repsep.data import open_dataset
from repsep.data.transforms import EvalTransform
from repsep.engine.checkpoint import load_model
from repsep.engine.inference import predict, resolve_settings
from repsep.errors import UserError


def model_only_seconds(ckpt: str, num_images: int, passes: int, device: torch.device) -> float:
    """Seconds for ``passes`` inference passes over the first ``num_images`` images, preloaded on ``device``."""
    loaded = load_model(ckpt, map_location=device)
    settings = resolve_settings(loaded.train_config, device=device)  # the sweep's default precision on device
    dataset = open_dataset(loaded.dataset_spec, "val", EvalTransform(scale=settings["scale"]))
    images = [dataset[i]["image"][None].to(device) for i in range(min(num_images, len(dataset)))]
    kwargs = {k: settings[k] for k in ("mode", "crop", "stride", "scales", "flip", "precision")}
    predict(loaded.model, images[0], **kwargs)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(passes):
        for image in images:
            predict(loaded.model, image, **kwargs).argmax(1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


@contextmanager
def forward_timer(device: torch.device):
    """Time every forward of the model that :func:`run_sweep` loads: yields a one-element list, the seconds spent
    inside ``model.forward`` (summed over the sweep; the CUDA queue drained before and after each forward)."""
    import repsep.engine.checkpoint as checkpoint

    spent, started, real = [0.0], [0.0], checkpoint.load_model
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def pre(_module, _args):
        sync()
        started[0] = time.perf_counter()

    def post(_module, _args, _output):
        sync()
        spent[0] += time.perf_counter() - started[0]

    def load(*args, **kwargs):
        loaded = real(*args, **kwargs)
        loaded.model.register_forward_pre_hook(pre)
        loaded.model.register_forward_hook(post)
        return loaded

    checkpoint.load_model = load
    try:
        yield spent
    finally:
        checkpoint.load_model = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model_final.pt of a trained model")
    parser.add_argument("--num-images", type=int, default=20, help="first N val images")
    parser.add_argument("--suite", default="cityscapes-c")
    parser.add_argument("--corruptions", default=None, help="comma-separated subset of the suite")
    parser.add_argument("--severities", default="1-5")
    parser.add_argument("--backends", default="reference,torch")
    parser.add_argument("--modes", default="workers,model", help="--corrupt-on modes to compare: auto, model, workers")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the sweep")
    parser.add_argument("--corrupt-batch", type=int, default=8, help="images corrupted together (model mode)")
    parser.add_argument("--cache-gb", type=float, default=8.0, help="host memory for the decoded clean images")
    parser.add_argument("--no-separate", action="store_true", help="skip the separate model-only pass (report "
                        "only the ratio to the forward time inside the sweep)")
    args = parser.parse_args()

    corruptions = resolve_corruptions(args.suite, args.corruptions)
    severities = parse_severities(args.severities)
    passes = 1 + len(corruptions) * len(severities)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_s = float("nan") if args.no_separate else model_only_seconds(args.model, args.num_images, passes, device)
    print(f"device {device}, {torch.get_num_threads()} threads; {args.num_images} images x {passes} cells; "
          f"{args.workers} workers, corrupt batch {args.corrupt_batch}")
    print("| backend | corrupt on | sweep wall (s) | model-only (s) | sweep / model-only | forward in sweep (s) | "
          "sweep / forward in sweep |\n|---|---|---:|---:|---:|---:|---:|")
    results: dict[str, dict] = {}
    for backend in args.backends.split(","):
        for mode in args.modes.split(","):
            cfg = SweepConfig(model=args.model, corruptions=corruptions, severities=severities, backend=backend,
                              num_images=args.num_images, workers=args.workers, corrupt_on=mode,
                              corrupt_batch=args.corrupt_batch, cache_gb=args.cache_gb)
            with tempfile.TemporaryDirectory() as out, forward_timer(device) as forward:
                start = time.perf_counter()
                try:
                    result = run_sweep(cfg, out, progress=False)
                except UserError as e:  # e.g. model mode with the per-image reference backend
                    print(f"| {backend} | {mode} | - | {model_s:.1f} | - ({e}) | - | - |")
                    continue
                sweep_s = time.perf_counter() - start
            label = mode if mode != "auto" else f"auto ({result['corrupt_on']})"
            print(f"| {backend} | {label} | {sweep_s:.1f} | {model_s:.1f} | {sweep_s / model_s:.2f} | "
                  f"{forward[0]:.1f} | {sweep_s / forward[0]:.2f} |", flush=True)
            results.setdefault(backend, result)
    if {"reference", "torch"} <= set(results):
        print_backend_agreement(results["reference"], results["torch"])


def print_backend_agreement(reference: dict, torch_result: dict) -> None:
    """The benchmark-level fidelity check: the model's mIoU per corruption (mean over severities) and per cell under
    both backends; the target is |difference| <= 1 point per corruption."""
    print("\n| corruption | produced by (torch run) | reference mIoU | torch mIoU | Δ | max cell |Δ| |\n"
          "|---|---|---:|---:|---:|---:|")
    worst = 0.0
    for c, ref_cells in reference["cells"].items():
        torch_cells = torch_result["cells"][c]
        cell_diffs = [abs(torch_cells[s] - ref_cells[s]) for s in ref_cells]
        diff = torch_result["per_corruption"][c] - reference["per_corruption"][c]
        worst = max(worst, abs(diff))
        sources = ",".join(sorted(set(torch_result["backend_per_cell"][c].values())))
        print(f"| {c} | {sources} | {reference['per_corruption'][c]:.2f} | {torch_result['per_corruption'][c]:.2f} | "
              f"{diff:+.2f} | {max(cell_diffs):.2f} |")
    print(f"\nlargest |Δ| per corruption: {worst:.2f} mIoU points (target <= 1); mPC reference "
          f"{reference['mPC']:.2f}, torch {torch_result['mPC']:.2f}")


if __name__ == "__main__":
    main()
