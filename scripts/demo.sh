#!/usr/bin/env bash
# The main job: set up .venv, then run the small Avila study end to end on this machine (train,
# reduce, plot, report). Extra arguments go to `drosweep demo` (e.g. --root DIR; --study
# studies/moons.toml runs the 2-D study instead).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DROSWEEP_DATA_DIR:-}" ] && [ -f ../shared/data/avila/avila-tr.txt ]; then
  export DROSWEEP_DATA_DIR=$(cd ../shared/data/avila && pwd)
fi
# the data: found, or fetched and verified into the default folder (one-line error offline)
.venv/bin/drosweep data ensure
exec .venv/bin/drosweep demo "$@"
