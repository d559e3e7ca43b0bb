#!/usr/bin/env bash
# The main job on the embedded default, end to end: `make demo` runs `bash scripts/demo.sh DEMO_OUT`.
# Stage 1 (data): generate SynthCity (300 train / 100 val at 256x512, seed 0) and validate it.
set -euo pipefail

OUT="${1:?usage: scripts/demo.sh OUTPUT_DIR}"
mkdir -p "$OUT"

echo "== SynthCity: generate into $OUT/synthcity (kept if already there) =="
repsep-bench data synth --out "$OUT/synthcity" --num-train 300 --num-val 100 --size 256x512 --seed 0
echo "== SynthCity: check the val split =="
repsep-bench data check "$OUT/synthcity" --split val --json "$OUT/synthcity_val_histogram.json"
