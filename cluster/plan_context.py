"""What a plan is made against: the cluster as read from SLURM, and the rates to estimate with.

`plan`, `submit` and `resume` all call `context`, so the three agree. For the slurm executor the
cluster is read (`cluster.executors.slurm.info`): MaxArraySize fills `max_array_size` when the study
leaves it out, and the profile is checked against the partition. The device model the estimates
are for is the executor's (`Executor.device_model`): for local and debug runs this machine's device;
on SLURM `cluster.device_model`, else, for GPU tasks, the gres type asked for
(`cluster.gpu_type`), else the only GPU gres type of the partition's nodes. Otherwise it is
unknown and the study's finished trials are not used. A data set whose shape comes from its files
(a user's table) is read first: a missing or wrong file is the same one line as `submit` gives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cluster.checks import data_problem
from cluster.executors import get_executor
from cluster.executors.slurm import info as slurm_info
from cluster.executors.slurm.info import SlurmInfo
from cluster.rates import RateBook, rate_book
from jobs.errors import StudyError
from jobs.grid import expand
from jobs.paths import Paths
from jobs.study import ClusterProfile, Study
from trainers.datasets import DataError, get_source


@dataclass(frozen=True)
class PlanContext:
    profile: ClusterProfile          # the study's, with what was read from the cluster
    rates: RateBook
    info: SlurmInfo | None           # None: not SLURM, or scontrol does not answer
    problems: tuple[str, ...]        # what the cluster cannot honour (submit refuses the first)


def context(study: Study, executor: str = "slurm", *, info: SlurmInfo | None = None,
            calibration: str | None = None, device: str | None = None) -> PlanContext:
    """Apply what was read from the cluster (`slurm_info.read()`, None where not SLURM) and
    gather the rates. A bad calibration file is a ClusterError; the cluster's objections are
    returned, not raised."""
    try:  # the estimates need the shape: refuse a table that cannot give it, naming the study
        get_source(study.dataset).shape(study.data_options)
    except DataError as exc:
        raise StudyError(data_problem(study) or f"{study.source}: {exc}") from None
    profile = study.cluster
    problems: tuple[str, ...] = ()
    if info is not None:
        if profile.max_array_size is None and info.max_array_size is not None:
            profile = dataclasses.replace(profile, max_array_size=info.max_array_size)
        problems = tuple(slurm_info.problems(profile, info))
    paths = Paths(study.root)
    model = get_executor(executor, study, paths).device_model(profile, info, device)
    rates = rate_book(paths, expand(study), model,
                      calibration if calibration is not None else profile.calibration)
    return PlanContext(profile, rates, info, problems)
