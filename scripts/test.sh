#!/usr/bin/env bash
# The test command: environment, lint, type check, then the whole suite — unit tests, real-data
# trainings and the integration tests against a real single-node SLURM started here (as root on
# Debian) and stopped again at the end. In CI (CI=true) a SLURM that cannot be started is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DROSWEEP_DATA_DIR:-}" ] && [ -f ../shared/data/avila/avila-tr.txt ]; then
  export DROSWEEP_DATA_DIR=$(cd ../shared/data/avila && pwd)
fi
# the data: found, or fetched and verified into the default folder; offline, the data tests
# report it (skipped here, failed in CI)
if .venv/bin/drosweep data ensure; then
  export DROSWEEP_DATA_DIR=$(.venv/bin/python -c "from trainers.data import resolve_data_dir; print(resolve_data_dir().absolute())")
fi
.venv/bin/ruff check .
.venv/bin/mypy
slurm_started=0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${DROSWEEP_NO_SLURM:-0}" != 1 ]; then
  already_up=0
  command -v scontrol >/dev/null 2>&1 && scontrol ping 2>/dev/null | grep -q UP && already_up=1
  if bash scripts/slurm-up.sh < /dev/null; then
    slurm_started=1
    # stop only a cluster this run started: one that was already up may be serving others
    [ $already_up = 1 ] || trap 'bash scripts/slurm-down.sh < /dev/null || true' EXIT
  elif [ "${CI:-}" = true ]; then
    echo "test: could not start the local SLURM cluster; CI needs it" >&2; exit 1
  fi
elif [ "${CI:-}" = true ]; then
  echo "test: CI needs root on Debian to start the local SLURM cluster" >&2; exit 1
fi
export DROSWEEP_SLURM_STARTED=$slurm_started
# as root the cluster could be started here: a SLURM test skipped for want of it is a failure
if [ "$(id -u)" = 0 ] && [ "${DROSWEEP_NO_SLURM:-0}" != 1 ]; then
  export DROSWEEP_REQUIRE_SLURM=1
fi
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
[ $rc = 5 ] && echo "test: pytest collected no tests" >&2
exit $rc
