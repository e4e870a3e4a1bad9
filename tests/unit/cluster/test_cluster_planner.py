"""Cost model and planner: packing by time, pack size and GPU memory; arrays cut at MaxArraySize."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cluster import ClusterError, estimate, plan
from cluster.cost import CONTEXT_BYTES
from jobs import expand, load_study, parse_study
from jobs.study import ClusterProfile
from studies import study_text
from trainers.spec import Method, TrainSettings, TrainSpec

REPO = Path(__file__).resolve().parents[3]


def grid(trials: int, methods: Sequence[str] = ("regular", "robust"), **settings: Any) -> str:
    """The planner's study (Avila, radii 0.05 and 0.3) with `trials` and these settings."""
    return study_text("/tmp/p", **{"name": "p", "dataset": None, "methods": methods,
                                   "radii": [0.05, 0.3], "trials": trials, **settings})


def test_cost_grows_with_radius_and_method() -> None:
    p = ClusterProfile()
    robust = [estimate(TrainSpec(Method.ROBUST, r, 0), p).seconds for r in (0.01, 0.1, 0.3)]
    assert robust == sorted(robust) and robust[2] > 50 * robust[0]
    regular = estimate(TrainSpec(Method.REGULAR, 0.0, 0), p)
    adversarial = estimate(TrainSpec(Method.ADVERSARIAL, 0.1, 0), p)
    assert regular.seconds < adversarial.seconds < robust[2]
    assert regular.steps == 1500 * 105
    small = TrainSpec(Method.REGULAR, 0.0, 0, TrainSettings(max_steps=10))
    assert estimate(small, p).steps == 10
    subset = TrainSpec(Method.REGULAR, 0.0, 0, TrainSettings(epochs=2, train_subset=250))
    assert estimate(subset, p).steps == 2 * 3


def test_paper_plan() -> None:
    study = load_study(REPO / "studies" / "paper.toml")
    start = time.perf_counter()
    the_plan = plan(expand(study), study.cluster)
    assert time.perf_counter() - start < 2.0
    assert len(the_plan.trials) == 1122 and {t.key for t in the_plan.trials} == {
        t.key for t in expand(study)}
    by_group = {(g.method, g.radius): g for g in the_plan.groups}
    assert by_group[(Method.REGULAR, 0.0)].trials_per_task == study.cluster.max_pack
    assert by_group[(Method.ROBUST, 0.3)].trials_per_task == 1  # big robust trials: alone
    for task in the_plan.tasks:
        assert len({t.group for t in task.trials}) == 1  # one method and radius per task
        assert task.peak_mem_bytes <= study.cluster.gpu_mem_gb * 1e9
    assert the_plan.gpu_hours > 100
    # the longest tasks come first
    seconds = [t.seconds for t in the_plan.tasks]
    assert seconds == sorted(seconds, reverse=True)


def test_pack_size_and_time_limit() -> None:
    study = parse_study(grid(10, cluster={"max_pack": 4, "time_limit_min": 100000}),
                        Path("p.toml"))
    the_plan = plan(expand(study), study.cluster)
    assert all(len(t.trials) <= 4 for t in the_plan.tasks)
    regular = [t for t in the_plan.tasks if t.trials[0].method is Method.REGULAR]
    assert [len(t.trials) for t in regular] == [4, 4, 2]


def test_long_trials_warn_and_go_alone() -> None:
    study = parse_study(grid(3, cluster={"time_limit_min": 60, "max_requeue": 20}),
                        Path("p.toml"))
    the_plan = plan(expand(study), study.cluster)
    big = [t for t in the_plan.tasks if t.trials[0].radius == 0.3]
    assert all(len(t.trials) == 1 for t in big)
    assert any("robust eps=0.3" in w and "requeue" in w for w in the_plan.warnings)


def test_trial_needing_more_requeues_than_allowed_is_refused() -> None:
    study = parse_study(grid(3, cluster={"time_limit_min": 60, "max_requeue": 2}),
                        Path("p.toml"))
    with pytest.raises(ClusterError, match=r"robust eps=0.3: a trial needs .*built-in estimate.*"
                                           r"raise cluster.max_requeue to \d+"):
        plan(expand(study), study.cluster)


def test_memory_limits_pack_and_refuses_oversized_trial() -> None:
    study = parse_study(grid(8, cluster={"time_limit_min": 100000}), Path("p.toml"))
    base = study.cluster
    robust = [t for t in expand(study) if t.method is Method.ROBUST and t.radius == 0.3]
    one = estimate(robust[0].train_spec, base)
    # room for exactly three trials' working memory
    tight = dataclasses.replace(base, gpu_mem_gb=(CONTEXT_BYTES + 3.5 * one.working_bytes) / 1e9)
    assert max(len(t.trials) for t in plan(robust, tight).tasks) == 3
    tiny = dataclasses.replace(base, gpu_mem_gb=0.1)
    with pytest.raises(ClusterError, match="chunk_size"):
        plan(robust, tiny)


@pytest.mark.parametrize(("trials", "max_array", "sizes"), [
    (10, 4, [4, 4, 2]), (10, 10, [10]), (10, 11, [10]), (1, 1, [1])])
def test_arrays_split_at_max_array_size(trials: int, max_array: int, sizes: list[int]) -> None:
    study = parse_study(grid(trials, ["robust"], radii=[0.3],
                             cluster={"max_array_size": max_array, "max_pack": 1}),
                        Path("p.toml"))
    the_plan = plan(expand(study), study.cluster)
    assert [len(a.tasks) for a in the_plan.arrays] == sizes
    assert sum(len(a.tasks) for a in the_plan.arrays) == trials


def test_duplicates_refused() -> None:
    study = parse_study(grid(2), Path("p.toml"))
    specs = expand(study)
    with pytest.raises(ClusterError):
        plan(specs + specs[:1], study.cluster)


def test_empty_plan() -> None:
    the_plan = plan([], ClusterProfile())
    assert the_plan.arrays == () and the_plan.gpu_hours == 0


def test_gpu_tasks_are_costed_with_the_cuda_chunk() -> None:
    spec = TrainSpec(Method.ROBUST, 0.3, 0)
    gpu = estimate(spec, ClusterProfile(device="cuda", gpus_per_task=1))
    cpu = estimate(spec, ClusterProfile(device="cpu", gpus_per_task=0))
    # a chunk of 2^20 samples in flight instead of 2^16, in 16x fewer launches
    assert gpu.working_bytes > 10 * cpu.working_bytes
    assert gpu.passes < cpu.passes / 10
    study = parse_study(grid(1, ["robust"]), Path("p.toml"))
    on_gpu = dataclasses.replace(study.cluster, device="cuda", gpus_per_task=1, gpu_mem_gb=1.0)
    with pytest.raises(ClusterError, match=r"lower training\.cuda_chunk_size"):
        plan(expand(study), on_gpu)
