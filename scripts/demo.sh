#!/usr/bin/env bash
# The main job: set up .venv, then run the small studies end to end on this machine (train,
# reduce, plot, report): the Avila smoke study, then two moons (studies/moons.toml), the 2-D study
# whose figures/decision_regions.png shows what robust training does. Extra arguments go to
# `drosweep demo` (e.g. --root DIR: the moons study then goes to DIR-moons).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DROSWEEP_DATA_DIR:-}" ] && [ -f ../shared/data/avila/avila-tr.txt ]; then
  export DROSWEEP_DATA_DIR=$(cd ../shared/data/avila && pwd)
fi
# the data: found, or fetched and verified into the default folder (one-line error offline)
.venv/bin/drosweep data ensure
moons=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --root) moons+=(--root "${args[i + 1]:-}-moons"); i=$((i + 1)) ;;
    --root=*) moons+=("${args[i]}-moons") ;;
    *) moons+=("${args[i]}") ;;
  esac
done
.venv/bin/drosweep demo "$@"
exec .venv/bin/drosweep demo --study studies/moons.toml "${moons[@]}"
