#!/usr/bin/env bash
# The long SynthCity profile (CPU, no download): the full ablation ladder baseline -> +pathway -> +SASM -> +DCA with
# the tiny recipes, clean evaluation, the 16-corruption x 5-severity sweep, over-smoothness analysis, and the report
# in $RUNS/report (the README's long-profile footnote; never reports/synthcity, which is kept for the study's report).
#
#   scripts/reproduce_synthcity.sh     # defaults below; e.g. ITERS=3000 SWEEP="baseline pathway sasm dca" for more
#
# ITERS: training iterations per model (validated every VAL_INTERVAL, so the report can show the plateau).
# ITERS_BASELINE: the baseline's own iterations (default ITERS): the from-scratch plain ViT converges slowest.
# SWEEP: the rungs that get the 16 x 5 corruption sweep on the first SWEEP_IMAGES val images (the sweep costs
# 81 passes per image; on 2 CPU cores the two ends of the ladder on 50 images take ~15 minutes).
# NPROC > 1 trains/evaluates under torchrun (gloo on CPU). Finished steps are skipped when run again.
set -euo pipefail

ITERS=${ITERS:-1000}
ITERS_BASELINE=${ITERS_BASELINE:-$ITERS}
VAL_INTERVAL=${VAL_INTERVAL:-200}
SWEEP=${SWEEP:-baseline dca}
SWEEP_IMAGES=${SWEEP_IMAGES:-50}
RUNS=${RUNS:-runs/synthcity}
NPROC=${NPROC:-1}
SEED=${SEED:-0}

launch() {
    if ((NPROC > 1)); then
        torchrun --standalone --nproc-per-node "$NPROC" -m repsep.cli "$@"
    else
        repsep-bench "$@"
    fi
}

# name: recipe and overrides (the +pathway and +SASM rungs switch parts of RSSeg off)
declare -A RECIPE=(
    [baseline]="synthcity_tiny_baseline"
    [pathway]="synthcity_tiny_rsseg --set model.sasm=false --set model.dca=false"
    [sasm]="synthcity_tiny_rsseg --set model.dca=false"
    [dca]="synthcity_tiny_rsseg"
)
LADDER=(baseline pathway sasm dca)

folders=()
models=()
for name in "${LADDER[@]}"; do
    out=$RUNS/$name
    iters=$ITERS
    [[ $name == baseline ]] && iters=$ITERS_BASELINE
    # shellcheck disable=SC2086  # the recipe string holds the recipe name and its --set options
    [[ -f $out/DONE ]] ||
        launch train ${RECIPE[$name]} --set "schedule.iters=$iters" --set "schedule.val_interval=$VAL_INTERVAL" \
            --set "seed=$SEED" --out "$out" --resume
    [[ -f $RUNS/eval/$name/metrics.json ]] || launch eval --model "$out/model_final.pt" --out "$RUNS/eval/$name"
    folders+=("$out" "$RUNS/eval/$name")
    [[ " $SWEEP " == *" $name "* ]] || { models+=(--model "$out/model_final.pt"); continue; }
    ref=()
    [[ $name != baseline ]] && ref=(--reference-results "$RUNS/corrupt/baseline")
    [[ -f $RUNS/corrupt/$name/robustness.json ]] ||
        launch corrupt --model "$out/model_final.pt" --suite cityscapes-c --severities 1-5 --backend reference \
            --num-images "$SWEEP_IMAGES" --workers 1 --seed "$SEED" "${ref[@]}" --out "$RUNS/corrupt/$name"
    folders+=("$RUNS/corrupt/$name")
    models+=(--model "$out/model_final.pt")
done

[[ -f $RUNS/analyze/similarity.json ]] ||
    repsep-bench analyze "${models[@]}" --num-images 100 --tsne-layers decoder_input,vit.block4 --seed "$SEED" \
        --out "$RUNS/analyze"
repsep-bench report "${folders[@]}" "$RUNS/analyze" --baseline baseline --seed 0 --resamples 1000 \
    --out "$RUNS/report" --overwrite
