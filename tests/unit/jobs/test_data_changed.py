"""A DONE marker records the sha256 of each data file its trial trained on: a table edited after
training shows the trial as changed in `status` (reason named), `resume` does not count it done
nor train over it, and `reduce` reports it instead of evaluating it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from dataset_files import write_table

from cluster import TrialState, study_status
from drosweep.cli import main
from jobs import Paths, expand, load_study, read_done
from studies import write_study

# the study of these tests: write_study(base, **CHANGED, data=table(csv)), trained once
CHANGED: dict[str, Any] = {
    "name": "data-changed", "dataset": "csv", "trials": 2,
    "training": {"epochs": 1, "max_steps": 2, "batch_size": 20, "hidden": 4},
    "cluster": {"gpus_per_node": 0, "gpus_per_task": 0, "cpus_per_task": 1, "device": "cpu"},
    "evaluation": {"test_subset": 10, "ball_samples": 5, "mean_samples": 5, "pgd_steps": 2,
                   "ga_population": 4, "ga_generations": 2, "ga_elite": 1}}


def table(csv: Path) -> dict[str, Any]:
    return {"data_file": str(csv), "label_column": "kind", "drop_columns": ["id", "note"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("trained")
    write_table(base / "table.csv", rows=60)
    f = write_study(base, **CHANGED, data=table(base / "table.csv"))
    assert main(["submit", str(f), "--executor", "debug", "--no-progress"]) == 0
    return base


def _copy(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(trained / "root", tmp_path / "root", copy_function=shutil.copy2)
    csv = tmp_path / "table.csv"
    shutil.copy2(trained / "table.csv", csv)
    frozen = tmp_path / "root" / "study.toml"  # the frozen study and the markers: the copy's
    frozen.write_text(frozen.read_text().replace(str(trained / "table.csv"), str(csv)))
    for done in (tmp_path / "root").rglob("DONE.json"):
        data = json.loads(done.read_text())
        data["data_files"] = {str(csv): sha for sha in data["data_files"].values()}
        done.write_text(json.dumps(data))
    f = write_study(tmp_path, **CHANGED, data=table(csv))
    return f, csv


def _edit(csv: Path) -> None:
    lines = csv.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = "9.99999"
    lines[1] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")


def test_markers_record_the_table_and_an_edit_makes_the_trials_changed(
        trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, csv = _copy(trained, tmp_path)
    study = load_study(f)
    paths = Paths(study.root)
    keys = [t.key for t in expand(study)]
    marker = read_done(paths, keys[0])
    assert marker is not None and list(marker.data_files or {}) == [str(csv)]
    assert {t.state for t in study_status(study).trials} == {TrialState.DONE}

    _edit(csv)
    status = study_status(study)
    for t in status.trials:
        assert t.state is TrialState.CHANGED
        assert t.detail.startswith(f"data changed: {csv}")
    capsys.readouterr()
    assert main(["status", str(f)]) == 0
    out = capsys.readouterr().out
    assert f"changed {keys[0]}: data changed: {csv}" in out and "changed data:" in out
    assert "a changed model" not in out  # its advice (delete DONE.json) would hide the change
    assert main(["status", str(f), "--verify"]) == 1
    assert f"data changed: {csv}" in capsys.readouterr().out
    assert main(["resume", str(f), "--executor", "debug", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "submitted 0 trial(s)" in out
    assert read_done(paths, keys[0]) == marker  # never trained over

    from reduce import reduce_study
    from reduce.reduction import ReduceOptions

    summary = reduce_study(study, ReduceOptions(progress=False))
    assert summary.evaluated == 2 and {k for k, _ in summary.errors} == set(keys)
    assert all(reason.startswith(f"data changed: {csv}") for _, reason in summary.errors)


def test_the_same_bytes_rewritten_a_file_not_found_and_older_markers_stay_done(trained: Path,
                                                              tmp_path: Path) -> None:
    f, csv = _copy(trained, tmp_path)
    study = load_study(f)
    paths = Paths(study.root)
    st = csv.stat()
    csv.write_bytes(csv.read_bytes())
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert {t.state for t in study_status(study).trials} == {TrialState.DONE}
    moved = csv.rename(csv.with_suffix(".away"))  # not found from here: unknown, not changed
    assert {t.state for t in study_status(study).trials} == {TrialState.DONE}
    moved.rename(csv)

    key = expand(study)[0].key
    data = json.loads(paths.done(key).read_text())
    del data["data_files"]  # a marker written before data fingerprints: unknown, not changed
    paths.done(key).write_text(json.dumps(data))
    _edit(csv)
    states = {t.trial.key: t.state for t in study_status(study).trials}
    assert states[key] is TrialState.DONE
    assert set(states.values()) == {TrialState.DONE, TrialState.CHANGED}


def test_the_fingerprint_of_a_fetched_set_is_its_verified_files(avila_data_dir: Path) -> None:
    from trainers.data import AVILA_SHA256
    from trainers.datasets import get_source
    from trainers.datasets.fingerprint import data_fingerprint

    avila = data_fingerprint("avila", get_source("avila").options(), avila_data_dir)
    assert {Path(p).name: sha for p, sha in avila.items()} == AVILA_SHA256
    assert data_fingerprint("synthetic", get_source("synthetic").options(), None) == {}
