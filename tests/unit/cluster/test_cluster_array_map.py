"""A function mapped over a job array (submitit, here on local processes): each task's result or
a `JobFailed` naming its job, in the order the jobs end; an executor without arrays refuses."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import submitit

from cluster.array_map import JobFailed, job_error, map_array
from cluster.errors import ClusterError
from cluster.executors import get_executor
from jobs import Paths, parse_study
from studies import study_text


def local(folder: Path, sizes: list[int]):  # type: ignore[no-untyped-def]
    def executor(size: int) -> submitit.Executor:
        sizes.append(size)
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=5)
        return ex
    return executor


def test_results_and_failures_by_index(tmp_path: Path) -> None:
    sizes: list[int] = []
    # the task runs in another process: a function it can import by name
    out = dict(map_array(local(tmp_path, sizes), math.sqrt, [4.0, -1.0, 9.0], poll_s=0.1))
    assert sizes == [3] and sorted(out) == [0, 1, 2]
    assert out[0] == 2.0 and out[2] == 3.0
    failure = out[1]
    assert isinstance(failure, JobFailed)
    assert failure.reason.startswith("ValueError: math domain error") and "(log: " in failure.reason
    assert failure.job_id and str(failure) == f"job {failure.job_id} failed: {failure.reason}"


def test_nothing_to_map_submits_nothing(tmp_path: Path) -> None:
    sizes: list[int] = []
    assert list(map_array(local(tmp_path, sizes), math.sqrt, [], poll_s=0.1)) == []
    assert sizes == []


def test_job_error_keeps_the_last_line_of_the_task_trace() -> None:
    text = ("Job (task=0) failed during processing with trace:\n----------------------\n"
            "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\n"
            "----------------------\nYou can check full logs with 'job.stderr(0)' and "
            "'job.stdout(0)'or at paths:\n  - /logs/7_0_log.err\n  - /logs/7_0_log.out\n")
    assert job_error(RuntimeError(text)) == "ValueError: bad (log: /logs/7_0_log.err)"
    assert job_error(RuntimeError("")) == "RuntimeError"


def test_an_executor_without_arrays_refuses(tmp_path: Path) -> None:
    study = parse_study(study_text(tmp_path, name="t"), tmp_path / "t.toml")
    executor = get_executor("local", study, Paths(study.root))
    with pytest.raises(ClusterError, match="runs no job arrays"):
        list(executor.map_array(math.sqrt, [1.0], job_name="t"))
