"""Does ``study --jobs`` pay on this machine? The same small study run with ``--jobs 1`` and with ``--jobs N``.

Each run is a fresh study folder (one recipe x ``--seeds`` at ``--iterations``, validation only at the end: train,
eval, a 4-image analyze, report; no sweep). Prints both wall times and their ratio (jobs 1 / jobs N: above 1
means side-by-side steps are faster). On 2 cores a tiny model's training is too small to keep 2 threads busy, so
2 jobs of 1 thread should beat 1 job of 2 threads.

    python scripts/bench_study_jobs.py --recipe synthcity_tiny_rsseg --iterations 200 --seeds 0,1 --jobs 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def study_seconds(spec: dict, folder: Path, jobs: int) -> float:
    """Wall seconds of ``repsep-bench study`` on ``spec`` into a fresh ``folder`` with ``--jobs jobs``."""
    folder.mkdir()
    (folder / "study.yaml").write_text(yaml.safe_dump(spec))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "repsep.cli", "study", str(folder / "study.yaml"), "--out",
                    str(folder / "out"), "--jobs", str(jobs)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="synthcity_tiny_rsseg")
    parser.add_argument("--data", default="synthcity")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seeds", default="0,1", help="training seeds, comma-separated (one run each)")
    parser.add_argument("--jobs", type=int, default=2, help="the side-by-side count compared with 1")
    args = parser.parse_args()
    spec = {"data": args.data, "iterations": args.iterations, "baseline": "model",
            "seeds": [int(s) for s in args.seeds.split(",")], "models": {"model": {"recipe": args.recipe}},
            "analyze": {"num_images": 4}, "report": {"resamples": 20}}
    with tempfile.TemporaryDirectory() as tmp:
        one = study_seconds(spec, Path(tmp) / "jobs1", 1)
        many = study_seconds(spec, Path(tmp) / f"jobs{args.jobs}", args.jobs)
    print(f"{args.recipe}, {len(spec['seeds'])} runs x {args.iterations} iterations (train, eval, analyze, report)")
    print(f"--jobs 1: {one:.1f} s   --jobs {args.jobs}: {many:.1f} s   ratio {one / many:.2f}x")


if __name__ == "__main__":
    main()
