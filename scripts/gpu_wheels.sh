#!/usr/bin/env bash
# Fill wheels/ (gitignored) with the locked versions of the packages the GPU machine lacks (scripts/gpu_wheels.list),
# for its Python 3.12 on x86-64, without their dependencies (the machine has those). Run it where pip reaches PyPI;
# scripts/gpu_check.sh installs them from wheels/ with `pip install --no-deps` when they are not importable.
#   bash scripts/gpu_wheels.sh            (then carry wheels/ with the tree to the GPU machine)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mkdir -p wheels
grep -v '^#' scripts/gpu_wheels.list | while read -r dist _prefix _module; do
    [ -n "$dist" ] || continue
    pin=$(grep -i "^${dist}==" requirements.lock) || { echo "error: $dist is not in requirements.lock" >&2; exit 1; }
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d wheels "$pin"
    echo "wheels/: $pin"
done
ls -l wheels/
