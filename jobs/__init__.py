"""Studies, trials, files and markers: everything about a study that is not the scheduler.

The names most callers need, from the modules that define them (each module's docstring says
what it owns): the study file (study.py, evaluation.py), its grid of trials (grid.py, radius.py),
the files of a study root (paths.py, markers.py, frozen.py) and the task entry point (task.py).
"""

from __future__ import annotations

from jobs.errors import StudyError
from jobs.evaluation import EvalSettings
from jobs.grid import (
    TrialSpec,
    derive_trial_seed,
    evaluation_radii,
    expand,
    parse_key,
    trial_key,
)
from jobs.markers import (
    DoneMarker,
    FailedMarker,
    read_done,
    read_failed,
    write_done,
    write_failed,
)
from jobs.pack import TaskFailed, TaskPack, TaskResult, TrialOutcome, run_pack, run_task
from jobs.paths import Paths, check_root_writable
from jobs.radius import radius_tag
from jobs.study import ClusterProfile, Study, load_study, parse_study

__all__ = [
    "ClusterProfile",
    "DoneMarker",
    "EvalSettings",
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
