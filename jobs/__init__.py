"""Studies, trials, files and markers: everything about a study that is not the scheduler.

API (stable):

- `load_study(path, root=None) -> Study`: read and validate a study file (TOML); `root`
  replaces the file's `root` (the CLI's `--root`). Raises `StudyError` (one line) on bad input.
  `Study` fields: name, root (absolute Path), dataset, methods (tuple[Method]), radii
  (tuple[float], the study's evaluation radii), trials, base_seed, regular_per_radius, settings
  (TrainSettings), cluster (ClusterProfile), data_dir (Path | None), source, text, evaluation
  (the raw `[evaluation]` table, validated by `reduce`), chain_reduce (bool), data_options
  (the data set's `[data]` settings, trainers.datasets); `fingerprint`
  (what is trained: not the cluster profile, not the evaluation).
- `expand(study) -> list[TrialSpec]`: all trials in a stable order. `TrialSpec(key, trial,
  train_spec)` with `.method`, `.radius` (the *training* radius), `.group`. Keys:
  `<method>/eps_<radius>/trial_<i>`; `regular` is trained once per trial under radius 0
  (`regular/eps_0/trial_3`) unless the study sets `regular_per_radius = true`.
- `evaluation_radii(study, trial) -> tuple[float, ...]`: where a trained model is evaluated
  (every study radius for a `regular` trained once; its own radius otherwise).
- `parse_key(key) -> (Method, radius, trial)`, `trial_key(method, radius, trial)`,
  `radius_tag(radius)`.
- `Paths(root)`: `study_file`, `ledger`, `logs`, `runs`, `results`, `metrics_parquet`,
  `metrics_csv`, `figures`, `report`; per trial (TrialSpec or key): `trial_dir`, `spec_file`,
  `checkpoint`, `model` (a plain state_dict), `done`, `failed`, `train_paths`.
- Markers: `read_done(paths, trial) -> DoneMarker | None` (fields: key, model_sha256, steps,
  epochs, wall_s, final_loss, resumed_from, host, slurm_job_id, finished_at, spec),
  `read_failed(paths, trial) -> FailedMarker | None` (error, traceback, host, slurm_job_id,
  failed_at), `is_done(paths, trial)`; writers `write_done`, `write_failed`.
- `TaskPack(root, trials, device, data_dir)` and `run_task(pack, should_stop=None)`: the task
  entry point (trains each trial not DONE, resuming; raises `TaskFailed` if any trial failed);
  `run_pack` is the same without the final raise.
- `check_root_writable(root)`: StudyError unless the root can be written (creates nothing).
"""

from __future__ import annotations

from jobs.errors import StudyError
from jobs.grid import (
    TrialSpec,
    derive_trial_seed,
    evaluation_radii,
    expand,
    parse_key,
    radius_tag,
    trial_key,
)
from jobs.markers import (
    DoneMarker,
    FailedMarker,
    is_done,
    read_done,
    read_failed,
    write_done,
    write_failed,
)
from jobs.paths import Paths, check_root_writable
from jobs.study import ClusterProfile, Study, load_study, parse_study
from jobs.task import TaskFailed, TaskPack, TaskResult, TrialOutcome, run_pack, run_task

__all__ = [
    "ClusterProfile",
    "DoneMarker",
    "FailedMarker",
    "Paths",
    "Study",
    "StudyError",
    "TaskFailed",
    "TaskPack",
    "TaskResult",
    "TrialOutcome",
    "TrialSpec",
    "check_root_writable",
    "derive_trial_seed",
    "evaluation_radii",
    "expand",
    "is_done",
    "load_study",
    "parse_key",
    "parse_study",
    "radius_tag",
    "read_done",
    "read_failed",
    "run_pack",
    "run_task",
    "trial_key",
    "write_done",
    "write_failed",
]
