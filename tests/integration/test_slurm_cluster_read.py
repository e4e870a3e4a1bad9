"""Reading the real local SLURM: bad settings refused before anything is written, MaxArraySize
taken from the cluster, arrays chained under one cap, and plans learning from DONE markers."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slurm_helpers import Cluster, run, wait_settled

from cluster import TrialState, plan, submit
from cluster.executors.slurm import info as slurm_info
from cluster.plan_context import context
from cluster.rates import rate_book
from drosweep.cli import main
from jobs import Paths, Study, expand, load_study, read_done

pytestmark = pytest.mark.slurm


def with_cluster(study: Study, *lines: str, drop: str | None = None) -> Path:
    """The study file with lines added to its [cluster] table (and one key dropped)."""
    text = study.source.read_text()
    if drop is not None:
        text = re.sub(rf"^{drop} = .*\n", "", text, flags=re.MULTILINE)
    text = text.replace("[cluster]\n", "[cluster]\n" + "".join(f"{ln}\n" for ln in lines))
    study.source.write_text(text)
    return study.source


def refused(path: Path, capsys: Any, expected: str) -> None:
    capsys.readouterr()
    assert main(["submit", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not load_study(path).root.exists()  # nothing written


@pytest.fixture
def short_partition() -> Iterator[str]:
    """A partition with a 30 min MaxTime on the local node, removed afterwards."""
    name = f"dro-short-{os.getpid()}"
    node = run(["sinfo", "-h", "-o", "%N"]).stdout.split()[0]
    made = run(["scontrol", "create", f"PartitionName={name}", f"Nodes={node}", "MaxTime=30",
                "State=UP"])
    assert made.returncode == 0, made.stderr
    try:
        yield name
    finally:
        run(["scontrol", "delete", f"PartitionName={name}"])


def test_unknown_partition_refused(make_study: Callable[..., Study], capsys: Any) -> None:
    path = with_cluster(make_study(), 'partition = "no-such-partition"')
    refused(path, capsys, "cluster.partition = 'no-such-partition': no such partition on this "
                          "cluster; choose one of")


def test_too_long_time_limit_refused(make_study: Callable[..., Study], short_partition: str,
                                     capsys: Any) -> None:
    path = with_cluster(make_study(), f'partition = "{short_partition}"')  # asks for 60 min
    refused(path, capsys, f"cluster.time_limit_min = 60 exceeds the 30 min MaxTime of "
                          f"partition '{short_partition}'; set it to 30 or less")


def test_too_many_cpus_refused(make_study: Callable[..., Study], slurm_cluster: Cluster,
                               capsys: Any) -> None:
    path = with_cluster(make_study(cpus=slurm_cluster.cpus + 1))
    refused(path, capsys, f"cluster.cpus_per_task = {slurm_cluster.cpus + 1} but the nodes of "
                          f"partition")


def test_missing_gres_type_refused(make_study: Callable[..., Study], capsys: Any) -> None:
    path = with_cluster(make_study(gpus=1), 'gpu_type = "no_such_gpu"')
    refused(path, capsys, "GPU(s) of gres type 'no_such_gpu'")


def test_max_array_size_from_the_cluster(make_study: Callable[..., Study]) -> None:
    path = with_cluster(make_study(), drop="max_array_size")
    study = load_study(path)
    assert study.cluster.max_array_size is None
    config = run(["scontrol", "show", "config"]).stdout
    expected = int(re.search(r"MaxArraySize\s*=\s*(\d+)", config).group(1))  # type: ignore
    assert context(study, info=slurm_info.read()).profile.max_array_size == expected


def test_arrays_chained_under_one_cap_and_markers_teach_the_plan(
        make_study: Callable[..., Study]) -> None:
    study = make_study(trials=5, epochs=2, max_array_size=2)  # 5 tasks: arrays of 2, 2, 1
    result = submit(study, "slurm", progress=False)
    first, second, _ = result.array_ids
    jobs = [run(["scontrol", "-o", "show", "job", a]).stdout for a in result.array_ids]
    assert "Dependency=" not in jobs[0] or "Dependency=(null)" in jobs[0]
    assert f"Dependency=afterany:{first}" in jobs[1], jobs[1]
    assert f"Dependency=afterany:{second}" in jobs[2], jobs[2]
    # each array may run 2 tasks (its size, under the study's cap of 4), one array at a time
    assert "ArrayTaskThrottle=2" in jobs[0] and "ArrayTaskThrottle=2" in jobs[1]
    status = wait_settled(study, timeout=300)
    assert status.counts[TrialState.DONE] == 5, status.to_json()
    paths = Paths(study.root)
    markers = [read_done(paths, t) for t in expand(study)]
    models = {m.device_model for m in markers if m is not None}
    assert len(models) == 1 and all(m is not None and m.pack == 1 for m in markers)
    (model,) = models
    assert model is not None and "thread" in model  # CPU tasks: CPU model and threads
    the_plan = plan(expand(study), study.cluster, rate_book(paths, expand(study), model))
    assert [(g.source, g.samples) for g in the_plan.groups] == [("study", 5)]
