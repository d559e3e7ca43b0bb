#!/usr/bin/env bash
# The main job on the embedded default, end to end: `make demo` runs `bash scripts/demo.sh DEMO_OUT`.
#
#   1. generate SynthCity (300 train / 100 val at 256x512, seed 0) and validate it
#   2. train three tiny ViT segmenters (repsep/configs/synthcity_tiny_{baseline,upernet_vit,rsseg}.yaml): the
#      matched control (RSSeg's decoder without its separation parts), UperNet-ViT as mmseg builds it (the
#      recognisable baseline), and RSSeg
#   3. evaluate them on the 100 val images
#   4. corrupt: the 16 Cityscapes-C corruptions x 5 severities on $CORRUPT_IMAGES val images (a seeded subset
#      spread over the split; CE/mCE against the matched control)
#   5. analyze over-smoothness of all three on $ANALYZE_IMAGES val images (seeded subset)
#   6. report: tables, bootstrap intervals and figures in $OUT/report
#
# Every step is skipped when its result is already there, so an interrupted demo continues where it stopped.
# Sized for about 20 minutes on 2 CPU cores; CORRUPT_IMAGES / ANALYZE_IMAGES trade time for precision.
set -euo pipefail

OUT="${1:?usage: scripts/demo.sh OUTPUT_DIR}"
CORRUPT_IMAGES=${CORRUPT_IMAGES:-10}
ANALYZE_IMAGES=${ANALYZE_IMAGES:-40}
DATA="synthcity:$OUT/synthcity"
mkdir -p "$OUT"
start=$SECONDS
step() { printf '\n== [%4ds] %s ==\n' $((SECONDS - start)) "$*"; }

step "SynthCity: generate into $OUT/synthcity (kept if already there)"
repsep-bench data synth --out "$OUT/synthcity" --num-train 300 --num-val 100 --size 256x512 --seed 0
step "SynthCity: check the val split"
repsep-bench data check "$OUT/synthcity" --split val --json "$OUT/synthcity_val_histogram.json"

folders=()
models=()
for name in baseline upernet_vit rsseg; do
    run="$OUT/runs/$name"
    step "train $name (synthcity_tiny_$name)"
    repsep-bench train "synthcity_tiny_$name" --set "data.spec=$DATA" --out "$run" --resume
    step "eval $name"
    [[ -f $OUT/eval/$name/manifest.json ]] ||
        repsep-bench eval --model "$run/model_final.pt" --out "$OUT/eval/$name"
    step "corrupt $name: 16 corruptions x 5 severities on $CORRUPT_IMAGES images"
    ref=()
    [[ $name != baseline ]] && ref=(--reference-results "$OUT/corrupt/baseline")
    [[ -f $OUT/corrupt/$name/manifest.json ]] ||
        repsep-bench corrupt --model "$run/model_final.pt" --suite cityscapes-c --severities 1-5 \
            --num-images "$CORRUPT_IMAGES" --workers 1 "${ref[@]}" --out "$OUT/corrupt/$name"
    folders+=("$run" "$OUT/eval/$name" "$OUT/corrupt/$name")
    models+=(--model "$run/model_final.pt")
done

step "analyze over-smoothness on $ANALYZE_IMAGES images"
[[ -f $OUT/analyze/manifest.json ]] ||
    repsep-bench analyze "${models[@]}" --num-images "$ANALYZE_IMAGES" --tsne-layers decoder_input,vit.block4 \
        --out "$OUT/analyze"

step "report"
repsep-bench report "${folders[@]}" "$OUT/analyze" --baseline baseline --out "$OUT/report" --overwrite
step "done: open $OUT/report/README.md"
