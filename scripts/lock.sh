#!/usr/bin/env bash
# Regenerate requirements.lock: resolve pyproject.toml (with the test extras) in a fresh venv and freeze it.
#   bash scripts/lock.sh            (about 3 minutes; needs the package registry)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --upgrade pip
"$tmp/venv/bin/pip" install --quiet -e ".[test]"
{
  echo "# Exact versions of every package (torch included) that \`make\` installs; regenerate with scripts/lock.sh."
  echo "# Made on Python $("$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())') / $(uname -m) with pip's resolution of pyproject.toml's [test] extras on $(date -u +%F)."
  "$tmp/venv/bin/pip" freeze --exclude-editable | grep -v '^#'
} > requirements.lock
echo "requirements.lock: $(grep -vc '^#' requirements.lock) packages"
