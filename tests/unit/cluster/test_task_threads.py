"""A task trains with torch limited to its `cpus_per_task` threads (local tasks share the cores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import trainers.loop
from cluster.planner import plan
from cluster.submission import _packs
from jobs import TaskPack, expand, parse_study, run_task
from studies import study_text
from trainers.device import cpu_threads
from trainers.loop import TrainResult


def _text(root: Path, cpus: int) -> str:
    return study_text(root, name="t", methods=["regular", "robust"], radii=[0.05], trials=2,
                      training={"epochs": 1, "max_steps": 3},
                      cluster={"gpus_per_node": 0, "gpus_per_task": 0, "cpus_per_task": cpus,
                               "device": "cpu"})




def test_cpu_threads_limits_and_restores() -> None:
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before


def test_task_trains_with_its_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def train_pack(specs: Any, paths: Any, **kw: Any) -> list[TrainResult]:
        seen.append(torch.get_num_threads())
        for p in paths:
            p.model.parent.mkdir(parents=True, exist_ok=True)
            p.model.write_bytes(b"weights")
        return [TrainResult(3, 1, 0.1, 0, 0.5, True, None) for _ in paths]

    monkeypatch.setattr(trainers.loop, "train_pack", train_pack)
    before = torch.get_num_threads()
    study = parse_study(_text(tmp_path, 1), Path("t.toml"))
    run_task(TaskPack(root=str(tmp_path), trials=tuple(expand(study)), device="cpu", threads=1))
    assert seen == [1, 1] and torch.get_num_threads() == before


@pytest.mark.parametrize("cpus", [1, 3])
def test_submitted_packs_carry_cpus_per_task(tmp_path: Path, cpus: int) -> None:
    study = parse_study(_text(tmp_path, cpus), Path("t.toml"))
    packs = _packs(study, plan(expand(study), study.cluster), "cpu", None, False, False)
    assert packs and all(p.threads == cpus for array in packs for p in array)


def test_a_reduction_in_this_process_uses_the_tasks_threads(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import reduce.reduction
    from reduce import ReduceOptions, reduce_study

    seen: list[int] = []
    monkeypatch.setattr(reduce.reduction, "_reduce_locked",
                        lambda *args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    study = parse_study(_text(tmp_path, 1), Path("t.toml"))
    reduce_study(study, ReduceOptions(partial=True, progress=False))
    assert seen == [1] and torch.get_num_threads() == before
