#!/usr/bin/env bash
# Reproduce the paper-scale experiments on GPUs: Cityscapes and ADE20K, baseline ViT vs RSSeg.
#
#   CITYSCAPES_ROOT=/data/cityscapes ADE20K_ROOT=/data/ADEChallengeData2016 \
#   VIT_B_WEIGHTS=pretrain/vit_base_patch16_384.pth VIT_L_WEIGHTS=pretrain/vit_large_patch16_384.pth \
#   PVT_V2_B2_WEIGHTS=pretrain/pvt_v2_b2.pth GPUS=8 scripts/reproduce_paper.sh
#
# Per dataset: train every recipe under torchrun, evaluate each model single-scale (slide windows, the recipe's eval
# settings) and multi-scale + flip, sweep the 16 Cityscapes-C corruptions x 5 severities (torch backend, the
# baseline as mCE reference), analyse over-smoothness, then write reports/<dataset> with `repsep-bench report`.
# Environment: DATASETS (default "cityscapes ade20k"), GPUS (default 8), RUNS (default runs/paper).
# Weights are local timm checkpoints (no hub access). Finished steps are skipped when run again.
# Exit code 2 (and the list of what is missing) when a data folder or weight file is not there.
set -euo pipefail

DATASETS=${DATASETS:-cityscapes ade20k}
GPUS=${GPUS:-8}
RUNS=${RUNS:-runs/paper}
MS_SCALES=0.5,0.75,1.0,1.25,1.5,1.75

missing=()
need_dir() {  # need_dir VAR SUBFOLDER...: $VAR is set and holds every SUBFOLDER
    local var=$1 sub
    shift
    if [[ -z ${!var:-} ]]; then
        missing+=("$var is not set (dataset root holding: $*)")
        return
    fi
    for sub in "$@"; do
        [[ -d ${!var}/$sub ]] || missing+=("$var=${!var}: no folder $sub/")
    done
}
need_file() {  # need_file VAR: $VAR is set and names an existing file
    local var=$1
    if [[ -z ${!var:-} ]]; then
        missing+=("$var is not set (local pretrained weights file: $2)")
    elif [[ ! -f ${!var} ]]; then
        missing+=("$var=${!var}: file not found")
    fi
}

for dataset in $DATASETS; do
    case $dataset in
        cityscapes)
            need_dir CITYSCAPES_ROOT leftImg8bit/train leftImg8bit/val gtFine/train gtFine/val
            need_file PVT_V2_B2_WEIGHTS "timm pvt_v2_b2 .pth/.safetensors" ;;
        ade20k)
            need_dir ADE20K_ROOT images/training images/validation annotations/training annotations/validation ;;
        *)
            missing+=("DATASETS: unknown dataset '$dataset' (choose cityscapes, ade20k)") ;;
    esac
done
need_file VIT_B_WEIGHTS "timm vit_base_patch16_384 .pth/.npz/.safetensors"
need_file VIT_L_WEIGHTS "timm vit_large_patch16_384 .pth/.npz/.safetensors"
if ((${#missing[@]})); then
    echo "reproduce_paper.sh: missing inputs:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
fi

launch() { torchrun --standalone --nproc-per-node "$GPUS" -m repsep.cli "$@"; }

train() {  # train RECIPE SPEC WEIGHTS
    local out=$RUNS/$1
    [[ -f $out/DONE ]] && return
    launch train "$1" --set "data.spec=$2" --set "pretrained=$3" --out "$out" --resume
}

evaluate() {  # evaluate RECIPE: single-scale (recipe's slide settings) and multi-scale + flip
    local model=$RUNS/$1/model_final.pt
    [[ -f $RUNS/eval/$1_ss/metrics.json ]] || launch eval --model "$model" --out "$RUNS/eval/$1_ss"
    [[ -f $RUNS/eval/$1_ms/metrics.json ]] ||
        launch eval --model "$model" --scales "$MS_SCALES" --flip --out "$RUNS/eval/$1_ms"
}

corrupt() {  # corrupt RECIPE SUITE [REFERENCE_RECIPE]
    local ref=()
    [[ -n ${3:-} ]] && ref=(--reference-results "$RUNS/corrupt/$3")
    [[ -f $RUNS/corrupt/$1/robustness.json ]] ||
        launch corrupt --model "$RUNS/$1/model_final.pt" --suite "$2" --severities 1-5 --backend torch \
            "${ref[@]}" --out "$RUNS/corrupt/$1"
}

run_dataset() {  # run_dataset DATASET SPEC SUITE BASELINE RECIPE...
    local dataset=$1 spec=$2 suite=$3 baseline=$4 recipe weights
    shift 4
    local recipes=("$baseline" "$@") folders=() models=()
    for recipe in "${recipes[@]}"; do
        case $recipe in
            *vit_b*) weights=$VIT_B_WEIGHTS ;;
            *vit_l*) weights=$VIT_L_WEIGHTS ;;
            *pvt_v2_b2*) weights=$PVT_V2_B2_WEIGHTS ;;
        esac
        train "$recipe" "$spec" "$weights"
        evaluate "$recipe"
        if [[ $recipe == "$baseline" ]]; then corrupt "$recipe" "$suite"; else corrupt "$recipe" "$suite" "$baseline"; fi
        folders+=("$RUNS/$recipe" "$RUNS/eval/${recipe}_ss" "$RUNS/eval/${recipe}_ms" "$RUNS/corrupt/$recipe")
        models+=(--model "$RUNS/$recipe/model_final.pt")
    done
    [[ -f $RUNS/analyze/$dataset/similarity.json ]] ||
        repsep-bench analyze "${models[@]}" --data "$spec" --num-images 100 --out "$RUNS/analyze/$dataset"
    repsep-bench report "${folders[@]}" "$RUNS/analyze/$dataset" --baseline "$baseline" --seed 0 \
        --resamples 1000 --out "reports/$dataset" --overwrite
}

for dataset in $DATASETS; do
    case $dataset in
        cityscapes)
            run_dataset cityscapes "cityscapes:$CITYSCAPES_ROOT" cityscapes-c cityscapes_vit_b_baseline \
                cityscapes_vit_b_rsseg cityscapes_vit_l_rsseg cityscapes_pvt_v2_b2_rsseg ;;
        ade20k)
            run_dataset ade20k "ade20k:$ADE20K_ROOT" ade20k-c ade20k_vit_b_baseline \
                ade20k_vit_b_rsseg ade20k_vit_l_rsseg ;;
    esac
done
