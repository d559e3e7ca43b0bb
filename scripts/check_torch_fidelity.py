"""Fidelity of the torch corruption backend against the reference on SynthCity scenes (default 20 at 256x512).

    .venv/bin/python scripts/check_torch_fidelity.py                   # every ported corruption, severities 1-5
    .venv/bin/python scripts/check_torch_fidelity.py --corruptions fog,snow --severities 3 --draws 3

Deterministic ports: max and mean absolute difference per pixel (criterion: max <= 2 grey levels). Random ports:
mean and std of (corrupted - clean) for both backends over images x draws seeded draws (criterion: std within 5 %;
mean within 5 % or, for near-zero means, max(1 grey level, 3 standard errors of the difference of the per-draw
means)). Prints a Markdown table and exits with status 1 when a row fails.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch


def main() -> int:
    from corruptions.backends import get_backend
    from corruptions.backends.torch_backend import DETERMINISTIC, PORTS
    from corruptions.suite import image_seed, parse_severities
    from repsep.data.synthcity import image_rng, render_scene

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corruptions", default=",".join(PORTS), help="comma-separated ported corruptions")
    parser.add_argument("--severities", default="1-5", help="e.g. 1-5, 3 or 1,3,5")
    parser.add_argument("--images", type=int, default=20, help="SynthCity val scenes")
    parser.add_argument("--size", default="256x512", help="HxW")
    parser.add_argument("--draws", type=int, default=3, help="seeds per image for the random corruptions")
    parser.add_argument("--global-draws", type=int, default=10,
                        help="seeds per image for fog, whose one fractal per image makes the "
                             "per-draw statistics spread widely")
    args = parser.parse_args()

    names = [n.strip() for n in args.corruptions.split(",") if n.strip()]
    unknown = [n for n in names if n not in PORTS]
    if unknown:
        parser.error(f"--corruptions: not ported: {', '.join(unknown)}")
    h, w = (int(v) for v in args.size.lower().split("x"))
    images = np.stack([render_scene(image_rng(0, "val", i), (h, w))[0] for i in range(args.images)])
    reference, backend = get_backend("reference"), get_backend("torch")

    print(f"{len(images)} SynthCity scenes at {h}x{w}; random corruptions: {args.draws} draw(s) per image "
          f"({args.global_draws} for fog)\n")
    print("| corruption | sev | kind | max abs diff | mean abs diff | ref mean | torch mean | mean tol | ref std "
          "| torch std | std rel | ok |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    failures = 0
    for name in names:
        deterministic = name in DETERMINISTIC
        draws = 1 if deterministic else args.global_draws if name == "fog" else args.draws
        batch = np.concatenate([images] * draws)
        ids = [f"{i}/{d}" for d in range(draws) for i in range(len(images))]
        for severity in parse_severities(args.severities):
            seeds = [image_seed(i, name, severity) for i in ids]
            ref = np.stack([reference.corrupt(im, name, severity, s) for im, s in zip(batch, seeds, strict=True)])
            ours = backend.corrupt_batch(torch.from_numpy(batch), name, severity, seeds).numpy()
            dr = ref.astype(np.float64) - batch
            dt = ours.astype(np.float64) - batch
            diff = np.abs(ref.astype(np.int16) - ours.astype(np.int16))
            ref_means, our_means = dr.mean(axis=(1, 2, 3)), dt.mean(axis=(1, 2, 3))
            stderr = math.sqrt((ref_means.var(ddof=1) + our_means.var(ddof=1)) / len(batch))
            tol = max(0.05 * abs(dr.mean()), 1.0, 3 * stderr)
            std_rel = dt.std() / dr.std() - 1
            random_ok = abs(dt.mean() - dr.mean()) <= tol and abs(std_rel) <= 0.05
            ok = diff.max() <= 2 if deterministic else random_ok
            failures += not ok
            print(f"| {name} | {severity} | {'deterministic' if deterministic else 'random'} | {diff.max()} | "
                  f"{diff.mean():.4f} | {dr.mean():.2f} | {dt.mean():.2f} | {tol:.2f} | {dr.std():.2f} | "
                  f"{dt.std():.2f} | {std_rel:+.3f} | {'yes' if ok else 'NO'} |", flush=True)
    print(f"\n{failures} failing row(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
