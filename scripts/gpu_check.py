"""The one-shot GPU check behind ``scripts/gpu_check.sh``: run every part, write ``gpu_check.json`` and
``gpu_check.md`` into OUTDIR (a folder of its own, with its ``.repsep-bench.json`` marker), print the Markdown.

    python scripts/gpu_check.py OUTDIR [--cpu-smoke] [--work DIR]

Parts, in order: generated data, the ViT-B RSSeg train smoke (its model feeds the next two), the ``corrupt`` sweep
ratio, a torchrun eval, model throughput, corruption speed. The sizes are the :data:`GPU` profile (budget in
``scripts/gpu_check.sh``) or, with ``--cpu-smoke``, :data:`SMOKE` (tiny models, 64x128 images, gloo, bf16 on the
CPU, torch.compile with the ``eager`` backend). The first failure stops the run: the JSON then holds the parts
done so far and ``"failed"``, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import math
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_check_parts as parts  # noqa: E402
from gpu_check_parts import Profile  # noqa: E402

from repsep.errors import UserError  # noqa: E402
from repsep.ownership import OwnedFolder  # noqa: E402

BASELINES = ("baseline_vit", "upernet_vit", "setr_naive", "setr_pup", "setr_mla", "segmenter_linear",
             "segmenter_mask")
GPU = Profile(
    name="gpu", device="cuda", synth_size="1024x2048", synth_train=8, synth_val=8, workers=8,
    corrupt_images=8, corrupt_size="1024x2048", corrupt_corruptions=None,
    sweep_corruptions=("gaussian_noise", "defocus_blur", "fog", "contrast"), sweep_severities=(3,), sweep_images=8,
    model_names=(*BASELINES, "rsseg_vit"), model_fp32_names=("baseline_vit", "rsseg_vit"), model_sizes=("B", "L"),
    model_hw=(512, 1024), model_batch=2, model_warmup=2, model_iters=5,
    compile_plan=(("baseline_vit", "B", "fwd"), ("rsseg_vit", "B", "fwd"), ("baseline_vit", "B", "fwd+bwd"),
                  ("rsseg_vit", "B", "fwd+bwd"), ("baseline_vit", "L", "fwd"), ("rsseg_vit", "L", "fwd")),
    compile_budget_s=120, compile_backend="inductor",
    train_iters=200, train_log=10, train_overrides=(), dist_backend="nccl", dist_images=8)
SMOKE = Profile(
    name="cpu-smoke", device="cpu", synth_size="64x128", synth_train=2, synth_val=2, workers=0,
    corrupt_images=1, corrupt_size="64x128", corrupt_corruptions="gaussian_noise,contrast",
    sweep_corruptions=("gaussian_noise",), sweep_severities=(3,), sweep_images=1,
    model_names=("rsseg_vit",), model_fp32_names=("rsseg_vit",), model_sizes=("tiny",),
    model_hw=(64, 128), model_batch=1, model_warmup=1, model_iters=1,
    compile_plan=(("rsseg_vit", "tiny", "fwd"),), compile_budget_s=30, compile_backend="eager",
    train_iters=2, train_log=1,
    train_overrides=("model.size=tiny", "model.img_size=[64, 128]", "data.crop=[64, 128]", "data.scale=[64, 128]",
                     "eval.stride=[64, 64]", "eval.crop=[64, 64]"),
    dist_backend="gloo", dist_images=1)


def _fmt(value: Any) -> str:
    """A table cell: ints as they are, floats to 3 significant digits (at least 2 decimals from 1 to 100)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"
    return str(value)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def markdown(result: dict[str, Any]) -> str:
    """The tables of ``result`` (what gets printed at the end and written as gpu_check.md)."""
    env = result["environment"]
    out = [f"# GPU check ({result['profile']})", "",
           f"{env['device_name']}, torch {env['torch']}, python {env['python']}; total {result['total_s']:.0f} s"
           + (f"; **FAILED in {result['failed']['part']}: {result['failed']['error']}**" if "failed" in result
              else ""), ""]
    if "train" in result:
        t = result["train"]
        out += ["## Train smoke (cityscapes_vit_b_rsseg)", ""] + _table(
            ["crop", "batch", "amp", "iters", "it/s", "peak MiB", "first loss", "last loss", "loss finite"],
            [[f"{t['crop'][0]}x{t['crop'][1]}", t["batch"], t["amp"], t["iters"], t["it_per_s"], t["peak_mib"],
              t["first_loss"], t["last_loss"], t["loss_finite"]]]) + [""]
    if "sweep" in result:
        s = result["sweep"]
        out += ["## corrupt sweep / model-only", ""] + _table(
            ["backend", "corrupt on", "precision", "images x cells", "sweep s", "model-only s", "sweep / model-only"],
            [[s["backend"], s["corrupt_on"], s["precision"], f"{s['images']} x {s['cells']}", s["sweep_s"],
              s["model_only_s"], s["ratio"]]]) + [""]
    if "torchrun" in result:
        d = result["torchrun"]
        out += ["## torchrun eval", ""] + _table(
            ["backend", "world", "all-reduce", "images", "precision", "mIoU", "wall s"],
            [[d["backend"], d["world_size"], d["all_reduce"], d["images"], d["precision"], d["mIoU"],
              d["seconds"]]]) + [""]
    if "models" in result:
        m = result["models"]
        out += [f"## Model throughput ({m['input'][0]}x{m['input'][1]}, batch {m['batch']}, {m['iters']} timed "
                f"steps)", ""] + _table(
            ["model", "ViT", "pass", "mode", "dtype", "img/s", "peak MiB", "warm-up s", "compile speed-up"],
            [[r["model"], r["size"], r["pass"], r["mode"], r["dtype"], r["images_per_s"], r["peak_mib"],
              r["warmup_s"], r.get("speedup_vs_eager")] for r in m["rows"]])
        if m["compile_skipped"]:
            out += ["", f"compile skipped (budget): {', '.join(m['compile_skipped'])}"]
        out += [""]
    if "corruptions" in result:
        c = result["corruptions"]
        out += [f"## Corruptions: reference vs torch {c['device']} ({c['size'][0]}x{c['size'][1]}, batch "
                f"{c['batch']}, severity {c['severity']}, s per image)", ""] + _table(
            ["corruption", "produced by", "reference s", f"torch {c['device']} s", "ratio"],
            [[r["corruption"], r["backend"], r["reference_s"], r["torch_s"], r["ratio"]] for r in c["rows"]])
        out += [""] + [f"whole suite ({scope}, {v['corruptions']} corruptions): reference {v['reference_s']:.2f} s, "
                       f"torch {v['torch_s']:.2f} s per image: **{v['ratio']:.1f}x**" for scope, v in
                       c["suites"].items()] + [""]
    out += ["## Time per part (s)", ""] + _table(["part", "seconds"], [[k, v] for k, v in result["timing"].items()])
    return "\n".join(out) + "\n"


def environment(device: str) -> dict[str, Any]:
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: run the GPU check on a GPU machine, or pass --cpu-smoke")
    return {"torch": torch.__version__, "python": platform.python_version(), "device": device,
            "device_name": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
            "cuda": torch.version.cuda, "threads": torch.get_num_threads()}


def run(profile: Profile, out: OwnedFolder, work: Path) -> dict[str, Any]:
    """Every part in order into ``result`` (written after each part); the first failure is recorded and raised."""
    start = time.perf_counter()
    result: dict[str, Any] = {"profile": profile.name, "environment": environment(profile.device), "timing": {}}
    steps = [("synth", lambda: parts.synth_data(profile, work)),
             ("train", lambda: parts.train_smoke(profile, work, Path(result["synth"]["path"]))),
             ("sweep", lambda: parts.sweep(profile, work, Path(result["train"]["model"]))),
             ("torchrun", lambda: parts.torchrun_eval(profile, work, Path(result["train"]["model"]))),
             ("models", lambda: parts.models(profile, work)),
             ("corruptions", lambda: parts.corruptions(profile, work))]

    def save() -> None:
        result["total_s"] = time.perf_counter() - start
        out.write_json("gpu_check.json", result)
        out.write_text("gpu_check.md", markdown(result))

    for name, step in steps:
        t0 = time.perf_counter()
        print(f"gpu_check: === {name} ===", flush=True)
        try:
            result[name] = step()
        except BaseException as e:
            result["timing"][name] = time.perf_counter() - t0
            result["failed"] = {"part": name, "error": f"{type(e).__name__}: {e}".splitlines()[0]}
            save()
            raise
        result["timing"][name] = time.perf_counter() - t0
        save()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (tests the plumbing)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args()
    profile = SMOKE if args.cpu_smoke else GPU
    if args.work is not None and args.outdir.resolve() in (args.work.resolve(), *args.work.resolve().parents):
        print(f"error: --work {args.work}: lies inside OUTDIR {args.outdir}, which holds only the check's own two "
              "files; choose a scratch folder outside it", file=sys.stderr)
        return 2
    try:  # a folder of its own: a rerun replaces only the two files it wrote there
        out = OwnedFolder.claim(args.outdir, "gpu_check", overwrite=True, what="OUTDIR")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = run(profile, out, work)
    except BaseException:
        traceback.print_exc()
        print(f"gpu_check: FAILED; partial results in {args.outdir / 'gpu_check.json'}", file=sys.stderr)
        return 1
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown(result), end="")
    print(f"gpu_check: done in {result['total_s']:.0f} s; results in {args.outdir}/gpu_check.json and gpu_check.md")
    if profile is GPU and result["total_s"] > 480:
        print(f"gpu_check: warning: took {result['total_s']:.0f} s, over the 8-minute budget", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
