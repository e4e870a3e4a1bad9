"""Evaluation as a job array (submitit, here on local processes): same rows as in-process, and a
task that dies turns its models into failed-to-reduce rows instead of hanging the reduction."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import submitit
from reduce_support import QUICK, finish_all, tiny_study

from cluster.array_map import map_array
from reduce import EvalTask, EvalUnit, ReduceOptions, reduce_study, run_eval_task
from reduce.arrayed import ArrayMap, array_mapper


def local(folder: Path) -> ArrayMap:
    def executor(size: int) -> submitit.Executor:
        del size
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=5)
        return ex
    return lambda fn, tasks: map_array(executor, fn, tasks, poll_s=0.2)


def test_array_gives_the_in_process_rows(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    finish_all(study)
    options = ReduceOptions(progress=False, models_per_task=6, device="cpu")
    arrayed = reduce_study(study, options, QUICK,
                           mapper=array_mapper(local(tmp_path / "logs")))
    assert arrayed.evaluated == 6 and not arrayed.errors
    a = pd.read_parquet(arrayed.parquet)
    arrayed.parquet.unlink()
    direct = reduce_study(study, dataclasses.replace(options, models_per_task=1), QUICK)
    b = pd.read_parquet(direct.parquet)
    cols = ["method", "radius", "trial", "metric", "value", "model_sha256"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_a_dead_task_becomes_error_rows(tmp_path: Path) -> None:
    unit = EvalUnit(key="robust/eps_0.1/trial_0", method="robust", trial=0, trained_radius=0.1,
                    radii=(0.1,), model_path=str(tmp_path / "model.pt"), model_sha256="0" * 64)
    task = EvalTask(units=(unit,), settings=QUICK, dataset="no-such-data", data_dir=None,
                    device="cpu", study="tiny", study_fingerprint="f" * 64)
    mapper = array_mapper(local(tmp_path / "logs"))
    (rows,) = list(mapper(run_eval_task, [task]))
    assert len(rows) == 1 and rows[0]["metric"] == "reduce_error"
    assert "failed" in str(rows[0]["error"]) and "no-such-data" in str(rows[0]["error"])
    assert str(rows[0]["error"]).startswith("evaluation job ") and rows[0]["device"] == "slurm"
