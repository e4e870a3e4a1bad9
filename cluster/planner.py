"""Planner: trials → packed tasks → job arrays sized to the cluster.

Trials of the same (method, radius) cost the same, so each group is packed greedily: a task
takes trials while it stays within `max_pack` trials, `fill_fraction` of the time limit (a trial
longer than that gets a task of its own and lives on checkpoints and requeues) and the GPU's
memory. A pack trains as one batched model (trainers.loop.train_pack): its trials' FLOPs and
working memory add up, but the launch-bound sequential passes are shared, which is what makes
packing the many small trials pay. The chosen k is recorded per task and per group. Longest
tasks come first (they start first), and tasks are cut into arrays of at most MaxArraySize
tasks, each indexed from 0 (MaxArraySize caps the index, not the count).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cluster.cost import Cost, estimate, pack_peak_bytes, pack_seconds
from cluster.errors import ClusterError
from jobs.grid import TrialSpec, radius_tag
from jobs.study import ClusterProfile
from trainers.spec import Method


@dataclass(frozen=True)
class TaskPlan:
    trials: tuple[TrialSpec, ...]
    seconds: float               # estimated: the trials trained as one batched model
    peak_mem_bytes: float

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


@dataclass(frozen=True)
class GroupPlan:
    method: Method
    radius: float
    trials: int
    tasks: int
    trials_per_task: int
    hours_per_trial: float       # one trial trained alone
    device_hours: float          # the group's tasks, packed


@dataclass(frozen=True)
class Plan:
    profile: ClusterProfile
    arrays: tuple[ArrayPlan, ...]
    groups: tuple[GroupPlan, ...]
    costs: dict[str, Cost]
    warnings: tuple[str, ...]

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


def _groups(specs: Sequence[TrialSpec]) -> dict[tuple[Method, float], list[TrialSpec]]:
    groups: dict[tuple[Method, float], list[TrialSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.group, []).append(spec)
    return groups


def plan(specs: Sequence[TrialSpec], profile: ClusterProfile) -> Plan:
    """Pack `specs` into tasks and arrays; ClusterError if a trial cannot fit a GPU."""
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
    for (method, radius), members in _groups(specs).items():
        cost = estimate(members[0].train_spec, profile)
        label = f"{method.value} eps={radius_tag(radius)}"
        if profile.gpus_per_task > 0 and cost.peak_mem_bytes > gpu_bytes:
            raise ClusterError(
                f"{label}: one trial needs ~{cost.peak_mem_bytes / 1e9:.1f} GB of GPU memory, "
                f"more than cluster.gpu_mem_gb = {profile.gpu_mem_gb:g}; lower training.chunk_size")
        per_task = max(1, min(profile.max_pack, len(members)))
        # a pack's working memory sits on its GPU, or in host memory for CPU-only tasks
        mem_bytes = gpu_bytes if profile.gpus_per_task > 0 else profile.mem_gb * 1e9
        while per_task > 1 and (pack_seconds(cost, per_task) > capacity_s
                                or pack_peak_bytes(cost, per_task) > mem_bytes):
            per_task -= 1
        usable_s = limit_s - profile.signal_delay_s
        if cost.seconds > usable_s:
            requeues = math.ceil(cost.seconds / usable_s) - 1
            note = (f"{label}: a trial needs ~{cost.hours:.1f} h, more than the "
                    f"{profile.time_limit_min} min limit: ~{requeues} requeue(s) per trial")
            if requeues > profile.max_requeue:
                note += f" (more than cluster.max_requeue = {profile.max_requeue}: raise it)"
            warnings.append(note)
        for member in members:
            costs[member.key] = cost
        group_s = 0.0
        for start in range(0, len(members), per_task):
            chunk = tuple(members[start:start + per_task])
            tasks.append(TaskPlan(chunk, pack_seconds(cost, len(chunk)),
                                  pack_peak_bytes(cost, len(chunk))))
            group_s += tasks[-1].seconds
        groups.append(GroupPlan(method, radius, len(members), math.ceil(len(members) / per_task),
                                per_task, cost.hours, group_s / 3600.0))
    tasks.sort(key=lambda t: -t.seconds)  # stable: grid order among equals
    size = profile.max_array_size
    arrays = tuple(ArrayPlan(tuple(tasks[i:i + size])) for i in range(0, len(tasks), size))
    return Plan(profile=profile, arrays=arrays, groups=tuple(groups), costs=costs,
                warnings=tuple(warnings))
