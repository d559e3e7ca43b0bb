"""Reference (imagecorruptions) vs torch backend: seconds per image for every corruption and severity.

    .venv/bin/python scripts/bench_corruptions.py                       # all 19 x 5 at 1024x2048, 2 images
    .venv/bin/python scripts/bench_corruptions.py --corruptions fog,zoom_blur --severities 3 --images 1
    .venv/bin/python scripts/bench_corruptions.py --size 512x1024 --devices cpu,cuda --json bench.json
    .venv/bin/python scripts/bench_corruptions.py --suite cityscapes-c --severities 3 --images 1 --size 512x512 \
        --busy --threads auto                                          # another 2-thread torch process runs

--busy starts a second process (2 torch threads multiplying 512x512 matrices in a loop) before the warm-up and stops
it at the end, so both backends are timed while the cores are busy, as in a CPU sweep where the model shares them.
--threads auto uses the count a sweep would choose for its own process (corruptions.threads.plan("process"));
REPSEP_CORRUPT_THREADS overrides it there too. The load average (1, 5, 15 min) is printed before and after.

Both backends corrupt the same SynthCity images (rendered at --size) with the same seeds. The reference runs image
by image; the torch backend gets the whole batch on each device (CPU, and CUDA when asked and present). Each
(corruption, severity, backend, device) is warmed up once on the first image before timing, so one-time costs that
a sweep pays once per cell (numba JIT, FFT plans, frost textures, shot noise's Poisson tables) are left out. Rows
print as they finish; the summary gives the whole-suite ratio over the natively ported corruptions (sum of reference
times / sum of torch times) and over everything (fallbacks included, where torch = reference).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch


def synthcity_images(n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``n`` SynthCity val scenes rendered at ``size``: uint8 [n, H, W, 3]."""
    from repsep.data.synthcity import image_rng, render_scene

    return np.stack([render_scene(image_rng(seed, "val", i), size)[0] for i in range(n)])


BUSY = """
import sys, torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
b = a @ a
print("busy", flush=True)
while True:
    b = a @ a
"""


def start_busy() -> subprocess.Popen:
    """A second process keeping 2 cores busy (torch matmul loop, 2 intra-op threads); returns once it runs."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "busy":
        proc.kill()
        raise SystemExit("error: the --busy process did not start")
    return proc


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corruptions", default=None, help="comma-separated names (default: every corruption)")
    parser.add_argument("--suite", default="all", help="named suite when --corruptions is not given: all, "
                                                        "cityscapes-c, ade20k-c")
    parser.add_argument("--severities", default="1-5", help="e.g. 1-5, 3 or 1,3,5")
    parser.add_argument("--images", type=int, default=2, help="images per cell (the torch batch size)")
    parser.add_argument("--size", default="1024x2048", help="HxW of the rendered images")
    parser.add_argument("--devices", default="cpu", help="torch devices, e.g. cpu or cpu,cuda (cuda skipped if absent)")
    parser.add_argument("--threads", default=None, help="torch/OpenCV threads: a count, or auto (what a sweep "
                                                         "chooses, corruptions.threads); default: torch's choice")
    parser.add_argument("--busy", action="store_true", help="time while another 2-thread torch process runs")
    parser.add_argument("--json", default=None, help="also write the rows and totals to this JSON file")
    args = parser.parse_args()

    busy = start_busy() if args.busy else None
    try:
        run(args, busy is not None)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def run(args, busy: bool) -> None:
    from corruptions.backends import get_backend
    from corruptions.suite import ALL_CORRUPTIONS, image_seed, parse_severities, resolve_corruptions
    from corruptions.threads import plan
    from repsep.io import atomic_write_json

    load_before = load_text()
    if args.threads == "auto":
        threads, reason = plan("process", ranks=1)
        print(f"threads auto: {threads} ({reason})")
    else:
        threads = int(args.threads) if args.threads else None
    if threads:
        import cv2

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    names = resolve_corruptions(args.suite, args.corruptions)
    severities = parse_severities(args.severities)
    h, w = (int(v) for v in args.size.lower().split("x"))
    devices = [d for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    images = synthcity_images(args.images, (h, w))
    ids = [f"bench_{i}" for i in range(len(images))]
    reference, torch_backend = get_backend("reference"), get_backend("torch")
    batches = {d: torch.from_numpy(images).to(d) for d in devices}

    def run_reference(name: str, severity: int, seeds: list[int]) -> None:
        for image, seed in zip(images, seeds, strict=True):
            reference.corrupt(image, name, severity, seed)

    def run_torch(device: str, name: str, severity: int, seeds: list[int]) -> None:
        torch_backend.corrupt_batch(batches[device], name, severity, seeds)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    print(f"seconds per image, {len(images)} SynthCity images of {h}x{w}; torch threads {torch.get_num_threads()}"
          + ("; another 2-thread torch process running (--busy)" if busy else "") + f"; {load_before}")
    header = ["corruption", "sev", "backend", "reference"] + [f"torch {d}" for d in devices] + [
        f"ratio {d}" for d in devices]
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---|" + "---:|" * (1 + 2 * len(devices)))
    rows = []
    for name in names:
        produced_by = torch_backend.backend_for(name)
        for severity in severities:
            seeds = [image_seed(i, name, severity) for i in ids]
            reference.corrupt(images[0], name, severity, seeds[0])  # warm-up: one-time costs of this cell
            for d in devices:
                run_torch(d, name, severity, seeds)
            ref_t = _timed(run_reference, name, severity, seeds)
            row = {"corruption": name, "severity": severity, "backend": produced_by,
                   "reference": ref_t / len(images)}
            for d in devices:
                row[f"torch_{d}"] = _timed(run_torch, d, name, severity, seeds) / len(images)
            rows.append(row)
            cells = [f"{row['reference']:.4f}"] + [f"{row[f'torch_{d}']:.4f}" for d in devices] + [
                f"{row['reference'] / row[f'torch_{d}']:.1f}x" for d in devices]
            print(f"| {name} | {severity} | {produced_by} | " + " | ".join(cells) + " |", flush=True)

    totals = {}
    for scope, keep in (("ported", lambda r: r["backend"] == "torch"), ("all", lambda r: True)):
        chosen = [r for r in rows if keep(r)]
        if not chosen:
            continue
        ref_sum = sum(r["reference"] for r in chosen)
        for d in devices:
            t_sum = sum(r[f"torch_{d}"] for r in chosen)
            totals[f"{scope}_{d}"] = {"reference_s": ref_sum, "torch_s": t_sum, "ratio": ref_sum / t_sum}
            print(f"whole suite ({scope}: {len({r['corruption'] for r in chosen})} corruptions x "
                  f"{len(severities)} severities), torch {d}: reference {ref_sum:.2f} s vs torch {t_sum:.2f} s "
                  f"per image -> {ref_sum / t_sum:.1f}x")
    load_after = load_text()
    print(f"before: {load_before}; after: {load_after}")
    if args.json:
        atomic_write_json(args.json, {"size": [h, w], "images": len(images), "devices": devices,
                                      "threads": torch.get_num_threads(), "busy": busy, "rows": rows,
                                      "totals": totals, "load_before": load_before, "load_after": load_after,
                                      "corruptions_known": list(ALL_CORRUPTIONS)})


if __name__ == "__main__":
    main()
