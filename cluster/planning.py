"""What a plan is made against: the cluster as read from SLURM, and the rates to estimate with.

`plan`, `submit` and `resume` all call `context`, so the three agree. For the slurm executor the
cluster is read (`cluster.slurm_info`): MaxArraySize fills `max_array_size` when the study leaves
it out, and the profile is checked against the partition. The device model the estimates are for
is: for local and debug runs this machine's device; else `cluster.device_model`; else, for GPU
tasks on SLURM, the gres type asked for (`cluster.gpu_type`), else the only GPU gres type of
the partition's nodes. Otherwise it is unknown and the study's finished trials are not used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cluster import slurm_info
from cluster.rates import RateBook, rate_book
from cluster.slurm_info import SlurmInfo
from jobs.grid import expand
from jobs.paths import Paths
from jobs.study import ClusterProfile, Study


@dataclass(frozen=True)
class PlanContext:
    profile: ClusterProfile          # the study's, with what was read from the cluster
    rates: RateBook
    info: SlurmInfo | None           # None: not SLURM, or scontrol does not answer
    problems: tuple[str, ...]        # what the cluster cannot honour (submit refuses the first)


def local_device_model(device: str, threads: int | None = None) -> str:
    """The device model of this machine for `device` (auto, cuda or cpu), with the torch threads
    its tasks train with (`cpus_per_task`; None: torch's default)."""
    from trainers.device import cpu_threads, device_model, resolve_device  # torch when needed

    with cpu_threads(threads):
        return device_model(resolve_device(device))


def device_model_for(profile: ClusterProfile, executor: str, info: SlurmInfo | None,
                     device: str | None = None) -> str | None:
    if executor in ("local", "debug"):
        return local_device_model(device or profile.device, profile.cpus_per_task)
    if profile.device_model:
        return profile.device_model
    if (device or profile.device) == "cpu":
        return None
    return slurm_info.gres_model(profile, info)


def context(study: Study, executor: str = "slurm", *, info: SlurmInfo | None = None,
            calibration: str | None = None, device: str | None = None) -> PlanContext:
    """Apply what was read from the cluster (`slurm_info.read()`, None where not SLURM) and
    gather the rates. A bad calibration file is a ClusterError; the cluster's objections are
    returned, not raised."""
    profile = study.cluster
    problems: tuple[str, ...] = ()
    if info is not None:
        if profile.max_array_size is None and info.max_array_size is not None:
            profile = dataclasses.replace(profile, max_array_size=info.max_array_size)
        problems = tuple(slurm_info.problems(profile, info))
    model = device_model_for(profile, executor, info, device)
    rates = rate_book(Paths(study.root), expand(study), model,
                      calibration if calibration is not None else profile.calibration)
    return PlanContext(profile, rates, info, problems)
