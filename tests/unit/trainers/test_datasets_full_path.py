"""Every data set beyond Avila through the whole path: plan, local submit, reduce (files in each
set's format, written by the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from dataset_files import write_grid, write_mnist, write_table

from drosweep.cli import main
from jobs import Paths, expand, load_study
from studies import write_study

CPU1 = {"gpus_per_node": 0, "gpus_per_task": 0, "cpus_per_task": 1, "mem_gb": 2,
        "device": "cpu", "local_parallelism": 1, "max_pack": 1}


def _grid(tmp_path: Path) -> dict[str, Any]:
    write_grid(tmp_path / "grid")
    return {"data_dir": str(tmp_path / "grid")}


def _mnist(tmp_path: Path) -> dict[str, Any]:
    write_mnist(tmp_path / "mnist")
    return {"data_dir": str(tmp_path / "mnist")}


def _csv(tmp_path: Path) -> dict[str, Any]:
    write_table(tmp_path / "table.csv", rows=140)  # 105 training rows: train_subset 100 fits
    return {"data": {"data_file": str(tmp_path / "table.csv"), "label_column": "kind",
                     "drop_columns": ["id", "note"], "test_fraction": 0.25}}


@pytest.mark.parametrize("dataset, files, n_in, n_out", [
    ("grid", _grid, 12, 2),
    ("csv", _csv, 5, 3),
    ("mnist", _mnist, 196, 10),
])
def test_plan_submit_reduce(tmp_path: Path, capsys: Any, dataset: str, files: Any, n_in: int,
                            n_out: int) -> None:
    f = write_study(tmp_path, name=f"{dataset}-path", dataset=dataset,
                    methods=["regular", "robust"], base_seed=3,
                    training={"epochs": 2, "hidden": 8, "batch_size": 50, "train_subset": 100,
                              "n_base": 4, "temp_steps": 4, "checkpoint_every": 100},
                    cluster=CPU1,
                    evaluation={"test_subset": 40, "ball_samples": 20, "mean_samples": 10,
                                "pgd_steps": 3, "ga_population": 6, "ga_generations": 3,
                                "ga_elite": 1},
                    **files(tmp_path))
    assert main(["plan", str(f)]) == 0
    assert "data:" not in capsys.readouterr().out
    assert main(["submit", str(f), "--executor", "local", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["reduce", str(f), "--no-progress"]) == 0
    study = load_study(f)
    paths = Paths(study.root)
    # the models are sized by the data set: n_in -> 8 -> 8 -> n_out
    for trial in expand(study):
        state = torch.load(paths.model(trial), weights_only=True)
        assert tuple(state["layer1.weight"].shape) == (8, n_in)
        assert tuple(state["layer3.weight"].shape) == (n_out, 8)
    df = pd.read_parquet(paths.metrics_parquet)
    assert set(df["method"]) == {"regular", "robust"}
    assert "reduce_error" not in set(df["metric"])
    clean = df[df["metric"] == "clean_accuracy"]["value"]
    assert len(clean) == 2 and ((clean >= 0) & (clean <= 1)).all()
