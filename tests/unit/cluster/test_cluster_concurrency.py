"""One `max_running` cap for the whole study: throttles and dependencies of each array, and the
sbatch parameters they become."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster import submit
from cluster.concurrency import ArrayOptions, schedule
from cluster.executors.slurm import SlurmExecutor
from jobs import Paths, load_study
from jobs.pack import TaskPack
from jobs.study import Study
from studies import study_text, write_study


def test_schedule_without_live_jobs() -> None:
    assert schedule(1, 8, []) == [(8, (), False)]
    assert schedule(3, 8, []) == [(8, (), False), (8, (), True), (8, (), True)]
    assert schedule(0, 8, []) == []


def test_schedule_counts_live_tasks_of_earlier_submissions() -> None:
    live = ["7_0", "7_1", "9_0", "9_0"]  # three live tasks in two arrays (a pack counted once)
    assert schedule(2, 8, live) == [(5, (), False), (8, ("7", "9"), True)]
    assert schedule(1, 8, ["local-20261125-ab12cd_0"]) == [(8, (), False)]
    full = [f"7_{i}" for i in range(8)]
    assert schedule(1, 8, full) == [(8, ("7",), False)]  # no slot left: wait, then the whole cap


def _max_running_over_every_order(cap: int, live: list[str], sizes: list[int]) -> int:
    """The most tasks running at once over every order in which tasks may end, SLURM starting
    every task its throttle and dependencies (`afterany`) allow as soon as they allow it (the
    worst case for the cap; live tasks all count as running). Fails on a deadlock."""
    slots = schedule(len(sizes), cap, live)
    live_arrays = sorted({j.split("_")[0] for j in live})
    start_live = tuple(sum(j.split("_")[0] == a for j in live) for a in live_arrays)
    seen: dict[tuple[tuple[int, ...], tuple[tuple[int, int], ...]], int] = {}

    def fill(lv: tuple[int, ...], new: tuple[tuple[int, int], ...]
             ) -> tuple[tuple[int, int], ...]:
        out = list(new)
        for i, ((pending, running), (throttle, after, after_prev)) in enumerate(
                zip(out, slots, strict=True)):
            waits = any(lv[live_arrays.index(a)] for a in after)
            if after_prev and i > 0:
                waits = waits or out[i - 1] != (0, 0)
            if not waits:
                go = min(pending, throttle - running)
                out[i] = (pending - go, running + go)
        return tuple(out)

    def worst(lv: tuple[int, ...], new: tuple[tuple[int, int], ...]) -> int:
        new = fill(lv, new)
        key = (lv, new)
        if key not in seen:
            now = sum(lv) + sum(r for _, r in new)
            ends = [((*lv[:a], lv[a] - 1, *lv[a + 1:]), new) for a in range(len(lv)) if lv[a]]
            ends += [(lv, (*new[:i], (p, r - 1), *new[i + 1:]))
                     for i, (p, r) in enumerate(new) if r]
            assert ends or all(p == 0 for p, _ in new), f"deadlock at {key}"
            seen[key] = max([now, *(worst(*e) for e in ends)])
        return seen[key]

    return worst(start_live, tuple((n, 0) for n in sizes))


@pytest.mark.parametrize("cap", [1, 2, 4])
@pytest.mark.parametrize("live", [[], ["1_0"], ["1_0", "1_1", "1_2"], ["1_0", "2_0", "2_1", "2_2"]])
@pytest.mark.parametrize("sizes", [[1], [3], [2, 3], [3, 1, 2]])
def test_cap_holds_over_time(cap: int, live: list[str], sizes: list[int]) -> None:
    """Whatever ends when, running tasks never exceed the cap (nor the live tasks, when they
    alone exceed it): every order of task ends is simulated."""
    assert _max_running_over_every_order(cap, live, sizes) <= max(cap, len(live))


def test_the_simulation_sees_a_broken_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrays side by side, each with the whole cap: the simulation finds the overrun."""
    monkeypatch.setitem(globals(), "schedule", lambda n, cap, live: [(cap, (), False)] * n)
    assert _max_running_over_every_order(2, [], [2, 2]) == 4




@pytest.fixture
def study(tmp_path: Path) -> Study:
    f = write_study(tmp_path, file="c.toml", name="c", trials=5, training={"epochs": 1},
                    cluster={"max_pack": 1, "max_array_size": 2, "max_running": 3,
                             "gpu_type": "h100", "time_limit_min": 100000})
    return load_study(f)


def test_submit_chains_arrays_under_one_cap(study: Study,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ArrayOptions | None]] = []
    ids = iter(range(101, 200))

    def fake_submit(self: SlurmExecutor, packs: list[TaskPack],
                    options: ArrayOptions | None = None) -> list[str]:
        calls.append((len(packs), options))
        array = next(ids)
        return [f"{array}_{i}" for i in range(len(packs))]

    monkeypatch.setattr(SlurmExecutor, "check", lambda self: None)
    monkeypatch.setattr(SlurmExecutor, "cluster_info", lambda self: None)
    monkeypatch.setattr(SlurmExecutor, "submit", fake_submit)
    result = submit(study, "slurm", sacct=lambda args: "")
    assert result.array_ids == ("101", "102", "103")
    assert [(n, o.max_running if o else None, o.after if o else None) for n, o in calls] == [
        (2, 3, ()), (2, 3, ("101",)), (1, 3, ("102",))]
    assert all(o is not None and o.time_limit_min == 100000 for _, o in calls)
    # a resume while array 101 still runs two tasks: one slot left for the new array
    calls.clear()
    running = "101_0|RUNNING\n101_1|RUNNING\n102_0|COMPLETED\n102_1|FAILED\n103_0|FAILED\n"
    submit(study, "slurm", resume=True, sacct=lambda args: running)
    assert [(n, o.max_running if o else None, o.after if o else None) for n, o in calls] == [
        (2, 1, ()), (1, 3, ("101", "104"))]


def sbatch_params(study: Study, options: ArrayOptions | None, size: int = 10) -> dict[str, Any]:
    ex = SlurmExecutor(study, Paths(study.root)).submitit_executor(size, options)
    return dict(ex.parameters)


def test_slurm_parameters(study: Study, no_slurm_needed: None) -> None:
    p = sbatch_params(study, ArrayOptions(42, 3, ("7", "9")))
    assert p["time"] == 42 and p["array_parallelism"] == 3
    assert p["dependency"] == "afterany:7:9" and p["gpus_per_node"] == "h100:1"
    assert sbatch_params(study, ArrayOptions(42, 3), size=2)["array_parallelism"] == 2
    default = sbatch_params(study, None)
    assert default["time"] == 100000 and default["array_parallelism"] == 3
    assert "dependency" not in default


@pytest.mark.parametrize(("cluster", "running"), [
    ({}, 64), ({"max_running": 7}, 7), ({"array_parallelism": 5}, 5)])
def test_max_running_and_its_old_name(tmp_path: Path, cluster: dict[str, Any],
                                      running: int) -> None:
    from jobs import parse_study

    text = study_text(tmp_path, dataset=None, cluster=cluster)
    assert parse_study(text, Path("s.toml")).cluster.max_running == running


@pytest.mark.parametrize(("cluster", "error"), [
    ({"max_running": 2, "array_parallelism": 2}, "old name of cluster.max_running"),
    ({"max_running": 0}, "cluster.max_running"),
    ({"gpu_type": "h100:2"}, "cluster.gpu_type"),
    ({"max_array_size": 0}, "cluster.max_array_size")])
def test_bad_cluster_settings(tmp_path: Path, cluster: dict[str, Any], error: str) -> None:
    from jobs import StudyError, parse_study

    with pytest.raises(StudyError, match=error):
        parse_study(study_text(tmp_path, dataset=None, cluster=cluster), Path("s.toml"))
