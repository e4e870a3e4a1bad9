#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with everything drosweep needs.
# torch is pinned first so that pip takes the release this project is tested with.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.drosweep-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import torch, submitit, pandas, pyarrow, matplotlib, filelock, tqdm, drosweep" \
    || { echo "setup: the environment in .venv is incomplete (see pip's messages above)" >&2; exit 1; }
  touch "$stamp"
fi
