#!/usr/bin/env bash
# The one-shot GPU check: everything that needs a GPU, measured in one command, into OUTDIR (gpu_check.json +
# gpu_check.md; the tables are printed at the end). Fails loudly: the first error stops it with a non-zero exit.
#   bash scripts/gpu_check.sh OUTDIR               (one GPU, <= 8 minutes; carry wheels/ from scripts/gpu_wheels.sh)
#   bash scripts/gpu_check.sh OUTDIR --cpu-smoke   (tiny sizes on the CPU, ~2 minutes on 2 cores: tests the plumbing)
#
# Budget on one H200 (seconds, estimated; gpu_check.json records the real time of each part):
#   wheels install (only what is not importable)                                                     10
#   data synth: 8 train + 8 val SynthCity images at 1024x2048, 8 workers                               25
#   train smoke: cityscapes_vit_b_rsseg (ViT-B RSSeg, crop 768x768, batch 1, bf16 autocast, random
#     init), 200 iterations on those images, 8 workers; it/s over iterations 10..200, peak memory, loss finite   70
#   corrupt sweep: that model, torch backend on the GPU (--corrupt-on model), 8 val images x (clean + 4
#     corruptions x severity 3), slide 768x768 / 512 at bf16; and the same forward passes alone         30
#   torchrun --standalone --nproc-per-node 1, NCCL process group: eval of that model on 8 images        25
#   model throughput, 512x1024, batch 2, 2 warm-up + 5 timed steps: eager bf16 fwd and fwd+bwd of the 7
#     baselines and RSSeg at ViT-B and ViT-L (fp32 too for baseline_vit and rsseg_vit)                  120
#     torch.compile (inductor, bf16) of baseline_vit / rsseg_vit, B fwd, B fwd+bwd, L fwd, in that order
#     until 120 s are spent (the rest listed as skipped)                                               120+
#   corruptions: scripts/bench_corruptions.py, 19 corruptions x severity 3, 8 images of 1024x2048 (the
#     torch batch), reference on the CPU vs torch on the GPU                                             75
#   total                                                                                            ~480
set -euo pipefail
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: bash scripts/gpu_check.sh OUTDIR [--cpu-smoke]" >&2
    exit 2
fi
OUTDIR=$(realpath -m "$1")
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 REPSEP_QUIET=1

# Wheels of what the GPU machine lacks, installed only when not importable.
SITE=${GPU_CHECK_SITE:-/tmp/gpu_check_site}
missing=()
while read -r dist prefix module; do
    case "$dist" in ''|'#'*) continue ;; esac
    "$PY" -c "import $module" 2>/dev/null || missing+=("$prefix")
done < scripts/gpu_wheels.list
if [ ${#missing[@]} -gt 0 ]; then
    files=()
    for prefix in "${missing[@]}"; do
        found=$(ls wheels/"$prefix"-*.whl 2>/dev/null | head -1) || true
        [ -n "$found" ] || { echo "error: wheels/: no wheel of $prefix; run scripts/gpu_wheels.sh where pip reaches PyPI and carry wheels/" >&2; exit 1; }
        files+=("$found")
    done
    echo "gpu_check: installing ${files[*]} into $SITE"
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${files[@]}"
    export PYTHONPATH="$PYTHONPATH:$SITE"
fi

exec "$PY" scripts/gpu_check.py "$OUTDIR" "$@"
