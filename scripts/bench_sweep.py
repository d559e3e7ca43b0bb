"""How model-bound is a `corrupt` sweep? Sweep wall time / model-only inference time on the same images.

The model-only time is the forward passes alone: the clean images are decoded, transformed and moved to the device
once, then ``predict`` runs on them as many times as the sweep has cells (clean + corruptions x severities). The
sweep time is a full ``run_sweep`` (data loading, corruption, inference, metrics, writing) into a fresh folder, once
per backend. A ratio of 1.0 means the sweep costs no more than its forward passes.

    python scripts/bench_sweep.py --model runs/synthcity_tiny_rsseg/model_final.pt --num-images 20 \\
        --corruptions gaussian_noise,defocus_blur,fog,contrast --severities 1-5 --backends reference,torch
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from corruptions.evaluate import SweepConfig, eval_settings, run_sweep
from corruptions.suite import parse_severities, resolve_corruptions
from repsep.data import open_dataset
from repsep.data.transforms import EvalTransform
from repsep.engine.checkpoint import load_model
from repsep.engine.inference import predict


def model_only_seconds(ckpt: str, num_images: int, passes: int, device: torch.device) -> float:
    """Seconds for ``passes`` inference passes over the first ``num_images`` images, preloaded on ``device``."""
    loaded = load_model(ckpt, map_location=device)
    settings = eval_settings(loaded.train_config)
    dataset = open_dataset(loaded.dataset_spec, "val", EvalTransform(scale=settings["scale"]))
    images = [dataset[i]["image"][None].to(device) for i in range(min(num_images, len(dataset)))]
    kwargs = {k: settings[k] for k in ("mode", "crop", "stride", "scales", "flip")}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model_final.pt of a trained model")
    parser.add_argument("--num-images", type=int, default=20, help="first N val images")
    parser.add_argument("--suite", default="cityscapes-c")
    parser.add_argument("--corruptions", default=None, help="comma-separated subset of the suite")
    parser.add_argument("--severities", default="1-5")
    parser.add_argument("--backends", default="reference,torch")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the sweep")
    args = parser.parse_args()

    corruptions = resolve_corruptions(args.suite, args.corruptions)
    severities = parse_severities(args.severities)
    passes = 1 + len(corruptions) * len(severities)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_s = model_only_seconds(args.model, args.num_images, passes, device)
    print(f"device {device}, {torch.get_num_threads()} threads; {args.num_images} images x {passes} cells")
    print("| backend | sweep wall (s) | model-only (s) | sweep / model-only |\n|---|---:|---:|---:|")
    for backend in args.backends.split(","):
        cfg = SweepConfig(model=args.model, corruptions=corruptions, severities=severities, backend=backend,
                          num_images=args.num_images, workers=args.workers)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            run_sweep(cfg, out, progress=False)
            sweep_s = time.perf_counter() - start
        print(f"| {backend} | {sweep_s:.1f} | {model_s:.1f} | {sweep_s / model_s:.2f} |")


if __name__ == "__main__":
    main()
