"""Every setting has sane bounds, checked when the study is read, whatever the executor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drosweep.cli import main
from jobs import load_study
from jobs.errors import StudyError
from studies import write_study
from trainers.data import check_subset
from trainers.datasets import DataError

ROOT = Path(__file__).parents[3]
# one regular trial on the CPU: write_study(tmp_path, **BOUNDS), a test adding its settings
CPU = {"gpus_per_task": 0, "device": "cpu"}
BOUNDS: dict[str, Any] = {"file": "s.toml", "name": "bounds", "training": {"epochs": 1},
                          "cluster": CPU}


ABSURD = [
    ({"time_limit_min": 1000000000000}, "cluster.time_limit_min"),
    ({"mem_gb": 1e12}, "cluster.mem_gb"),
    ({"gpu_mem_gb": 1e12}, "cluster.gpu_mem_gb"),
    ({"max_array_size": 1000000000000}, "cluster.max_array_size"),
    ({"max_running": 1000000000000}, "cluster.max_running"),
    ({"max_pack": 1000000000000}, "cluster.max_pack"),
    ({"max_requeue": 1000000000000}, "cluster.max_requeue"),
    ({"gpus_per_node": 1000000000000}, "cluster.gpus_per_node"),
    ({"local_parallelism": 1000000000000}, "cluster.local_parallelism"),
    ({"sbatch_extra": {"output": "x"}}, "--output is set by drosweep"),
    ({"sbatch_extra": {"array": "0-3"}}, "cluster.max_array_size"),
]


@pytest.mark.parametrize(("cluster", "message"), ABSURD)
def test_absurd_cluster_values_are_refused_at_load(cluster: dict[str, Any], message: str,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, **{**BOUNDS, "cluster": {**CPU, **cluster}})
    with pytest.raises(StudyError, match=message.replace(".", r"\.")):
        load_study(path)
    for command in (["plan", str(path)], ["submit", str(path), "--executor", "local"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "root").exists()


def test_the_largest_sane_values_still_load(tmp_path: Path) -> None:
    sane = {**CPU, "time_limit_min": 100000, "mem_gb": 2048, "max_array_size": 4000001,
            "max_running": 5000}
    study = load_study(write_study(tmp_path, **{**BOUNDS, "cluster": sane}))
    assert study.cluster.time_limit_min == 100000 and study.cluster.max_array_size == 4000001


@pytest.mark.parametrize(("subset", "message"), [
    (1000000000, "must be <= 100,000,000 rows"),
    (601, "601 rows asked, but data set 'synthetic' has 600 training rows"),
])
def test_a_train_subset_beyond_the_data_is_refused_at_load(subset: int, message: str,
                                                           tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    path = write_study(tmp_path, **{**BOUNDS, "training": {"epochs": 1, "train_subset": subset}})
    with pytest.raises(StudyError, match=message):
        load_study(path)
    assert main(["plan", str(path)]) == 2
    assert message in capsys.readouterr().err
    path = write_study(tmp_path, **{**BOUNDS, "training": {"epochs": 1, "train_subset": 600}})
    assert load_study(path).settings.train_subset == 600


def test_a_table_counted_when_read_names_both_numbers() -> None:
    check_subset(None, 10)
    check_subset(10, 10)
    with pytest.raises(DataError, match="asks for 11 training rows, but the data set has 10"):
        check_subset(11, 10)


@pytest.mark.parametrize(("subset", "message"), [("1000000000", "100,000,000"),
                                                 ("601", "601 training rows, but the data set "
                                                         "has 600")])
def test_cli_train_refuses_a_subset_beyond_the_data(subset: str, message: str,
                                                    tmp_path: Path) -> None:
    folder = tmp_path / "save"
    proc = subprocess.run([sys.executable, "-m", "drosweep", "train", "-t", "regular", "-r", "0",
                           "-s", str(folder), "-i", "0", "--dataset", "synthetic", "--epochs",
                           "1", "--train-subset", subset, "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not folder.exists()
