"""Planner: trials → packed tasks → job arrays sized to the cluster.

Trials of the same (method, radius) cost the same, so each group is packed greedily: a task
takes trials while it stays within `max_pack` trials, `fill_fraction` of the time limit (a trial
longer than that gets a task of its own and lives on checkpoints and requeues) and the GPU's
memory. A pack trains as one batched model (trainers.loop.train_pack): its trials' FLOPs and
working memory add up, but the launch-bound sequential passes are shared, which is what makes
packing the many small trials pay. The chosen k is recorded per task and per group. Longest
tasks come first (they start first), and tasks are cut into arrays of at most MaxArraySize
tasks, each indexed from 0 (MaxArraySize caps the index, not the count).

Times come from `cluster.rates`: the study's own finished trials, a calibration file, or the
cost model's constants; each group records which. The safety margin is `fill_fraction`: a pack
is planned to fill at most that share of the time limit, and an array whose tasks all rest on
measured rates asks SLURM for its longest task's estimate ÷ fill_fraction (plus the checkpoint
signal's lead time), never more than `time_limit_min`: shorter limits start sooner (backfill).
Built-in estimates are guesses, so their arrays keep the full `time_limit_min`. A trial longer
than the limit is split across requeues (it resumes from its checkpoint); one that needs more
requeues than `max_requeue` allows is refused, naming the settings to change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cluster.cost import Cost, chunk_setting, pack_peak_bytes
from cluster.errors import ClusterError
from cluster.rates import BUILTIN, GroupRate, RateBook, trial_rate
from jobs.axes import value_tag
from jobs.grid import Axes, TrialSpec, group_label
from jobs.study import ClusterProfile
from trainers.spec import Method


@dataclass(frozen=True)
class TaskPlan:
    trials: tuple[TrialSpec, ...]
    seconds: float               # estimated: the trials trained as one batched model
    peak_mem_bytes: float
    measured: bool = False       # the estimate rests on measured rates (study or calibration)

    @property
    def k(self) -> int:
        """Trials trained as one batched model by this task."""
        return len(self.trials)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.trials)


@dataclass(frozen=True)
class ArrayPlan:
    tasks: tuple[TaskPlan, ...]  # task i runs as array index i
    time_limit_min: int = 0      # what the array asks SLURM for (0: the profile's)


@dataclass(frozen=True)
class GroupPlan:
    method: Method
    radius: float
    trials: int
    tasks: int
    trials_per_task: int
    hours_per_trial: float       # one trial trained alone
    device_hours: float          # the group's tasks, packed
    source: str = "built-in"     # where the estimate came from (cluster.rates.Source)
    samples: int = 0             # finished trials (or calibration measurements) behind it
    axes: Axes = ()              # a swept study: the values of its settings (a group each)


@dataclass(frozen=True)
class Plan:
    profile: ClusterProfile
    arrays: tuple[ArrayPlan, ...]
    groups: tuple[GroupPlan, ...]
    costs: dict[str, Cost]
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()  # where the estimates came from (device model, calibration)

    @property
    def tasks(self) -> tuple[TaskPlan, ...]:
        return tuple(t for a in self.arrays for t in a.tasks)

    @property
    def trials(self) -> tuple[TrialSpec, ...]:
        return tuple(s for t in self.tasks for s in t.trials)

    @property
    def device_hours(self) -> float:
        return sum(t.seconds for t in self.tasks) / 3600.0

    @property
    def gpu_hours(self) -> float:
        """Device-hours × GPUs per task (0 for a CPU-only profile)."""
        return self.device_hours * self.profile.gpus_per_task


def _groups(specs: Sequence[TrialSpec]
            ) -> dict[tuple[tuple[Method, float], Axes], list[TrialSpec]]:
    """Trials by (method, radius) and swept values: a group's trials cost the same and train
    together as one batched model (one setting per pack: `trainers.spec.pack_key`)."""
    groups: dict[tuple[tuple[Method, float], Axes], list[TrialSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.group, spec.axes), []).append(spec)
    return groups


MIN_TIME_LIMIT_MIN = 10        # a measured estimate never asks for less (start-up, data load)


def array_time_limit(tasks: Sequence[TaskPlan], profile: ClusterProfile) -> int:
    """Minutes an array asks for: see the module docstring."""
    if not tasks or not all(t.measured for t in tasks):
        return profile.time_limit_min
    longest = max(t.seconds for t in tasks) / profile.fill_fraction + profile.signal_delay_s
    return max(1, min(profile.time_limit_min,
                      max(MIN_TIME_LIMIT_MIN, math.ceil(longest / 60.0))))


def plan(specs: Sequence[TrialSpec], profile: ClusterProfile,
         rates: RateBook = BUILTIN) -> Plan:
    """Pack `specs` into tasks and arrays; ClusterError if a trial cannot fit a GPU or needs
    more requeues than `max_requeue`."""
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise ClusterError("the same trial is listed twice in one plan")
    limit_s = profile.time_limit_min * 60.0
    capacity_s = limit_s * profile.fill_fraction
    gpu_bytes = profile.gpu_mem_gb * 1e9
    costs: dict[str, Cost] = {}
    tasks: list[TaskPlan] = []
    groups: list[GroupPlan] = []
    warnings: list[str] = []
    for ((method, radius), axes), members in _groups(specs).items():
        rate: GroupRate = trial_rate(members[0].train_spec, profile, rates)
        cost = rate.cost
        alone_s = rate.pack_seconds(1)
        label = group_label(method, radius) + "".join(f" {k}={value_tag(v)}" for k, v in axes)
        if profile.gpus_per_task > 0 and cost.peak_mem_bytes > gpu_bytes:
            raise ClusterError(
                f"{label}: one trial needs ~{cost.peak_mem_bytes / 1e9:.1f} GB of GPU memory, "
                f"more than cluster.gpu_mem_gb = {profile.gpu_mem_gb:g}; lower "
                f"{chunk_setting(profile)}")
        per_task = max(1, min(profile.max_pack, len(members)))
        # a pack's working memory sits on its GPU, or in host memory for CPU-only tasks
        mem_bytes = gpu_bytes if profile.gpus_per_task > 0 else profile.mem_gb * 1e9
        while per_task > 1 and (rate.pack_seconds(per_task) > capacity_s
                                or pack_peak_bytes(cost, per_task) > mem_bytes):
            per_task -= 1
        usable_s = limit_s - profile.signal_delay_s
        if alone_s > usable_s:
            requeues = math.ceil(alone_s / usable_s) - 1
            basis = (f"{rate.source.value}, {rate.samples} trial(s)" if rate.measured
                     else rate.source.value)
            if requeues > profile.max_requeue:
                raise ClusterError(
                    f"{label}: a trial needs ~{alone_s / 3600:.1f} h ({basis} estimate), "
                    f"{requeues} requeues of the {profile.time_limit_min} min limit, more than "
                    f"cluster.max_requeue = {profile.max_requeue}: raise cluster.max_requeue "
                    f"to {requeues} or cluster.time_limit_min")
            warnings.append(f"{label}: a trial needs ~{alone_s / 3600:.1f} h, more than the "
                            f"{profile.time_limit_min} min limit: split over ~{requeues} "
                            f"requeue(s) per trial")
        for member in members:
            costs[member.key] = cost
        group_s = 0.0
        for start in range(0, len(members), per_task):
            chunk = tuple(members[start:start + per_task])
            tasks.append(TaskPlan(chunk, rate.pack_seconds(len(chunk)),
                                  pack_peak_bytes(cost, len(chunk)), rate.measured))
            group_s += tasks[-1].seconds
        groups.append(GroupPlan(method, radius, len(members), math.ceil(len(members) / per_task),
                                per_task, alone_s / 3600.0, group_s / 3600.0,
                                rate.source.value, rate.samples, axes))
    tasks.sort(key=lambda t: -t.seconds)  # stable: grid order among equals
    size = profile.array_size_cap
    arrays = tuple(ArrayPlan(chunk, array_time_limit(chunk, profile))
                   for chunk in (tuple(tasks[i:i + size]) for i in range(0, len(tasks), size)))
    return Plan(profile=profile, arrays=arrays, groups=tuple(groups), costs=costs,
                warnings=tuple(warnings), notes=rates.notes)
