"""From trials to a scheduler and back: cost model, planner, executors, submit, status, resume.

API:
- `plan(specs, profile, rates=BUILTIN) -> Plan`: pack trials into tasks and arrays
  (`Plan.arrays[i].tasks[j].trials`, `.arrays[i].time_limit_min`, `.groups` with each estimate's
  `source`, `.device_hours`, `.gpu_hours`, `.warnings`); `estimate(spec, profile)`.
- `plan_context.context(study, executor, info=get_executor(...).cluster_info(), calibration=...)`: the
  profile as the cluster completes it, the rates (`cluster.rates`) and the cluster's objections.
- `submit(study, executor="slurm"|"local"|"debug", *, dry_run, progress, device, calibration) ->
  SubmitResult`; `resume(study, ...)` the same for a study already at its root (with the
  executor of its last submission unless given). Both submit only trials with no DONE marker and
  no live job, under a lock (`submit_lock`: a second caller is told who holds it); local/debug
  run to the end.
- `study_status(study) -> StudyStatus` (`.counts`, `.groups`, `.trials`, `.eta_s`,
  `.to_json()`): markers first, then one `sacct` call for all arrays.
- `ledger.read(Paths(root).ledger) -> [Submission]`: every submission (array id, task → keys).
- `TrainTask(pack)`: the preemptible submitit callable around `jobs.run_task`.
- Executors (`executors.get_executor(name, study, paths)`, the one registry; SLURM's code is all
  in `executors/slurm/`) own a submission's whole lifecycle: `submit`, `submit_after(fn, args,
  after)` (what runs once the arrays have ended), `map_array(fn, items, job_name=...)` (any
  function over one job array: each result, or an `array_map.JobFailed`), `job_states`,
  `cancel_jobs`, `log_files`, `scripts` (the dry-run preview) and `device_model`. No code
  outside `executors/` tests an executor's name (tests/unit/cluster/test_executor_seam.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cluster.errors import ClusterError
from cluster.state_enums import JobState, TrialState

if TYPE_CHECKING:
    from cluster.cost import Cost, estimate
    from cluster.planner import ArrayPlan, GroupPlan, Plan, TaskPlan, plan
    from cluster.status import GroupStatus, StudyStatus, TrialStatus, study_status
    from cluster.submission import SubmitResult, resume, submit

# loaded on first use: `status` must not pay for submitit and the executors it never runs
_LAZY = {"Cost": "cluster.cost", "estimate": "cluster.cost",
         "ArrayPlan": "cluster.planner", "GroupPlan": "cluster.planner", "Plan": "cluster.planner",
         "TaskPlan": "cluster.planner", "plan": "cluster.planner",
         "GroupStatus": "cluster.status", "StudyStatus": "cluster.status",
         "TrialStatus": "cluster.status", "study_status": "cluster.status",
         "SubmitResult": "cluster.submission", "resume": "cluster.submission",
         "submit": "cluster.submission"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cluster' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ArrayPlan",
    "ClusterError",
    "Cost",
    "GroupPlan",
    "GroupStatus",
    "JobState",
    "Plan",
    "StudyStatus",
    "SubmitResult",
    "TaskPlan",
    "TrialState",
    "TrialStatus",
    "estimate",
    "plan",
    "resume",
    "study_status",
    "submit",
]
