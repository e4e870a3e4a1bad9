"""Reduction: wait on a study's markers, evaluate every trained model, keep a tidy results table.

API:

- `reduce_study(study, options=ReduceOptions(), settings=None, mapper=in_process) ->
  ReduceSummary`: evaluate every DONE model not yet in `results/metrics.parquet` (same sha256 and
  settings are skipped) and rewrite the table and its CSV atomically. `settle(study, options)`
  waits (`options.wait`) and refuses an incomplete study unless `options.partial`.
  `failed_threshold_for(study)`: the clean accuracy below which a training counts as failed.
- `EvalSettings` (jobs/evaluation.py): every constant of the evaluation (paper defaults); a
  study's `[evaluation]` table overrides them (`eval_settings_for(study)`).
- `evaluate_model(model, x, y, radii, settings, key)`: the metrics of one model (`METRICS`).
- `wait_for_markers`, `scan_markers`: DONE / FAILED / missing, with a timeout.
- `EvalTask`, `run_eval_task`: a picklable piece of evaluation work for a job array.
- Errors: `ReduceError` (bad input, exit code 2), `WaitTimeout`, `ModelFileError` (one trial).
"""

from jobs.evaluation import EvalSettings
from reduce.errors import ModelFileError, ReduceError, WaitTimeout
from reduce.eval_tasks import EvalTask, EvalUnit, run_eval_task
from reduce.evaluate import METRICS, evaluate_model
from reduce.reduction import (
    ReduceOptions,
    ReduceSummary,
    chance_for,
    eval_settings_for,
    failed_threshold_for,
    reduce_study,
    settle,
)
from reduce.wait import MarkerScan, scan_markers, wait_for_markers

__all__ = [
    "METRICS",
    "EvalSettings",
    "EvalTask",
    "EvalUnit",
    "MarkerScan",
    "ModelFileError",
    "ReduceError",
    "ReduceOptions",
    "ReduceSummary",
    "WaitTimeout",
    "chance_for",
    "eval_settings_for",
    "evaluate_model",
    "failed_threshold_for",
    "reduce_study",
    "run_eval_task",
    "scan_markers",
    "settle",
    "wait_for_markers",
]
