#!/usr/bin/env bash
# The GPU round in one command, for a machine with CUDA torch (and its triton) already installed:
# versions, the CUDA tests, `drosweep doctor` (the fused robust kernel against the chunked pass
# per precision), the side-by-side benchmark with a calibration at every radius, and the paper
# study's plan from that calibration. Results go to $OUT (default ./gpu-out), one file a step;
# each step is bounded by a timeout so that the whole fits a 10-minute lease.
#   bash scripts/gpu-check.sh            # everything
#   STEPS="bench plan" bash scripts/gpu-check.sh
# Needs the project's pure-Python dependencies (submitit, pandas, pyarrow, matplotlib, filelock,
# tqdm, pytest, hypothesis) importable; a machine without a registry gets them as wheels on
# PYTHONPATH. Nothing here writes outside $OUT and a temporary folder.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
STEPS=${STEPS:-"versions tests doctor bench plan"}
step() {  # name, timeout in s, command...
  local name=$1 limit=$2; shift 2
  case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
  local t0=$SECONDS
  echo "== $name"
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "   rc=$rc in $((SECONDS - t0)) s ($OUT/$name.txt)"
  tail -n 25 "$OUT/$name.txt"
}
step versions 60 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; \
  $PY -c 'import torch, triton; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \
  \"triton\", triton.__version__, \"gpu\", torch.cuda.get_device_name())'"
step tests 240 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/unit/trainers/test_cuda.py \
  tests/unit/trainers/test_trainer_fused_kernel.py
step doctor 300 "$PY" -m drosweep doctor --out "$OUT/calibration-doctor.json"
step bench 300 "$PY" benchmarks/gpu_profile.py --json --calibration-out "$OUT/calibration.json"
step plan 60 "$PY" -m drosweep plan studies/paper.toml --set cluster.gpu_type=h200 \
  --calibration "$OUT/calibration.json"
