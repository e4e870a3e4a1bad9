#!/usr/bin/env bash
# The main job: set up .venv, then run the two small studies end to end on this machine (train,
# reduce, plot, report): the Avila smoke study (the pipeline on the paper's data) and the 2-D
# moons study (an effect one can see and that its claim checks confirm). Extra arguments go to
# `drosweep demo` (e.g. --root DIR: DIR/smoke and DIR/moons; --study FILE runs that one alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DROSWEEP_DATA_DIR:-}" ] && [ -f ../shared/data/avila/avila-tr.txt ]; then
  export DROSWEEP_DATA_DIR=$(cd ../shared/data/avila && pwd)
fi
# the data: found, or fetched and verified into the default folder (one-line error offline)
.venv/bin/drosweep data ensure
exec .venv/bin/drosweep demo "$@"
