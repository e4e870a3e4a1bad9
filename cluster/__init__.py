"""From trials to a scheduler and back: cost model, planner, executors, submit, status, resume.

API:
- `plan(specs, profile) -> Plan`: pack trials into tasks and arrays (`Plan.arrays[i].tasks[j]
  .trials`, `.groups`, `.device_hours`, `.gpu_hours`, `.warnings`); `estimate(spec, profile)`.
- `submit(study, executor="slurm"|"local"|"debug", *, dry_run, progress, device) ->
  SubmitResult`; `resume(study, ...)` the same for a study already at its root. Both submit only
  trials with no DONE marker and no live job, under a lock; local/debug run to the end.
- `study_status(study) -> StudyStatus` (`.counts`, `.groups`, `.trials`, `.eta_s`,
  `.to_json()`): markers first, then one `sacct` call for all arrays.
- `ledger.read(Paths(root).ledger) -> [Submission]`: every submission (array id, task → keys).
- `TrainTask(pack)`: the preemptible submitit callable around `jobs.run_task`.
"""

from __future__ import annotations

from cluster.cost import Cost, estimate
from cluster.errors import ClusterError
from cluster.planner import ArrayPlan, GroupPlan, Plan, TaskPlan, plan
from cluster.states import JobState, TrialState
from cluster.status import GroupStatus, StudyStatus, TrialStatus, study_status
from cluster.submission import SubmitResult, resume, submit

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
