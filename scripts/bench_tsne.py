"""Time one t-SNE embedding of class-balanced blobs with the analysis protocol (PCA 50, perplexity 30).

Target: 20k points in <= 60 s on 2 cores. Usage: ``python scripts/bench_tsne.py [--points 20000] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.tsne import tsne_embed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=128, help="feature width before PCA")
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--backend", default="auto", choices=["auto", "opentsne", "sklearn"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = np.arange(args.points) % args.classes
    x = rng.normal(size=(args.classes, args.dim))[labels] * 3 + rng.normal(size=(args.points, args.dim))
    start = time.perf_counter()
    emb = tsne_embed(x, seed=0, n_jobs=args.jobs, backend=args.backend)
    seconds = time.perf_counter() - start
    print(f"t-SNE {args.backend}: {args.points} points x {args.dim} dims, {args.jobs} jobs: {seconds:.1f} s "
          f"({seconds / 60:.2f} of the 60 s target); embedding {emb.shape}")


if __name__ == "__main__":
    main()
