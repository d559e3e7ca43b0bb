#!/usr/bin/env bash
# Commit the finished steps of a study folder that is kept in git (the committed SynthCity study):
#   bash scripts/commit_study.sh studies/synthcity_ladder            finished steps; each finished run with its
#                                                                     model_final.pt, never its checkpoint_last.pt
#   bash scripts/commit_study.sh studies/synthcity_ladder --partial  also the unfinished runs with their resume
#                                                                     checkpoints and the unfinished sweeps with the
#                                                                     cells they finished: only after the study was
#                                                                     stopped
# A clone of the commit continues the study where it stopped (`repsep-bench study ... --out` the same folder).
# Commits only what it stages (nothing else may be staged); exit 1 with "nothing to commit" when nothing is new.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1/.repsep-bench.json" ]; then
    echo "usage: bash scripts/commit_study.sh STUDY_DIR [--partial]  (STUDY_DIR: a study's --out folder)" >&2
    exit 2
fi
study=${1%/}
partial=${2:-}
if ! git diff --cached --quiet; then
    echo "error: the index already holds staged changes; commit or unstage them first" >&2
    exit 2
fi
# the files each result folder's marker lists (what its command wrote): of finished results, and with --partial of
# the unfinished trainings and sweeps too (the files that exist: a sweep lists every cell it plans); a finished
# run's checkpoint_last.pt leaves the index
mapfile -t actions < <(python3 - "$study" "$partial" <<'PY'
import json, pathlib, sys
root, partial = pathlib.Path(sys.argv[1]), sys.argv[2] == "--partial"
for marker in sorted(root.rglob(".repsep-bench.json")):
    record = json.loads(marker.read_text(encoding="utf-8"))
    kind, finished = record.get("kind"), bool(record.get("finished"))
    if not (kind == "study" or finished or (partial and kind in ("train", "corrupt"))):
        continue
    print(f"add {marker}")
    for name in sorted(record.get("files", {})):
        path = marker.parent / name
        if name == "checkpoint_last.pt" and finished:
            print(f"drop {path}")
        elif path.is_file():
            print(f"add {path}")
PY
)
for action in "${actions[@]}"; do
    path=${action#* }
    case "$action" in
        add\ *) git add -f "$path" ;;
        drop\ *) git rm -q --cached --ignore-unmatch "$path" ;;
    esac
done
if git diff --cached --quiet; then
    echo "nothing to commit"
    exit 1
fi
runs=$(git diff --cached --name-only | sed -n "s#^$study/\(.*\)/\.repsep-bench\.json\$#\1#p" | tr '\n' ' ')
git commit -q -m "study: finished steps so far${partial:+ (and the unfinished runs, stopped)}: ${runs:-updates}"
git log --oneline -1
