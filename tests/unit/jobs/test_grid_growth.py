"""A study grows at its root: more radii or trials at the same science add trials (only they
train; the frozen study becomes the union; one results table holds every row), a smaller file
is a selection of the root's trials, and only another science needs another root."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cluster import ledger
from drosweep.cli import main
from jobs import Paths
from studies import write_study

# the study of these tests: write(f, radii, trials), a test changing its training
TRAINING = {"epochs": 1, "max_steps": 2, "batch_size": 20, "hidden": 16}
GROWING: dict[str, Any] = {
    "name": "growing", "regular_per_radius": True, "training": TRAINING,
    "cluster": {"gpus_per_task": 0, "device": "cpu"},
    "evaluation": {"test_subset": 60, "ball_samples": 40, "mean_samples": 20, "pgd_steps": 3,
                   "ga_population": 6, "ga_generations": 3, "ga_elite": 1}}
FIRST = "regular/eps_0.01/trial_0"
NEW = ["regular/eps_0.01/trial_1", "regular/eps_0.02/trial_0", "regular/eps_0.02/trial_1"]


def write(f: Path, radii: list[float], trials: int, **changes: Any) -> Path:
    return write_study(f.parent, file=f.name, **{**GROWING, **changes}, radii=radii,
                       trials=trials)


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_grown_grid_trains_only_its_new_trials(tmp_path: Path, capsys: Any) -> None:
    f = write(tmp_path / "study.toml", [0.01], 1)
    paths = Paths(tmp_path / "root")
    assert run(capsys, "submit", str(f), "--executor", "local", "--no-progress")[0] == 0
    first_done = paths.done(FIRST).read_bytes()

    write(f, [0.01, 0.02], 2)  # a radius and a trial more, same science
    code, out, _ = run(capsys, "submit", str(f), "--executor", "local", "--no-progress")
    assert code == 0, out
    assert "1 trial(s) done, 0 queued or running; submitted 3 trial(s)" in out
    assert paths.done(FIRST).read_bytes() == first_done  # untouched
    assert sorted(k for t in ledger.read(paths.ledger)[-1].tasks for k in t.keys) == NEW
    frozen = tomllib.loads(paths.study_file.read_text())
    assert (frozen["radii"], frozen["trials"]) == ([0.01, 0.02], 2)

    assert run(capsys, "reduce", str(f), "--no-progress")[0] == 0
    table = pd.read_parquet(paths.metrics_parquet)
    assert sorted(table["key"].unique()) == sorted([FIRST, *NEW])

    # a smaller file is a selection: its trials only, nothing removed
    part = write(tmp_path / "part.toml", [0.02], 1)
    code, out, _ = run(capsys, "status", str(part), "--json")
    counts = json.loads(out)["counts"]
    assert code == 0 and counts["done"] == 1 and sum(counts.values()) == 1
    code, out, _ = run(capsys, "reduce", str(part), "--no-progress", "--json")
    assert code == 0 and json.loads(out)["rows"] == len(table)
    assert sorted(pd.read_parquet(paths.metrics_parquet)["key"].unique()) == \
        sorted([FIRST, *NEW])
    code, out, _ = run(capsys, "submit", str(part), "--executor", "local", "--no-progress")
    assert code == 0 and "submitted 0 trial(s): nothing to do" in out
    assert tomllib.loads(paths.study_file.read_text())["radii"] == [0.01, 0.02]
    code, out, _ = run(capsys, "status", "--root", str(paths.root), "--json")
    assert json.loads(out)["counts"]["done"] == 4

    # another science: another root, named in one line
    other = write(tmp_path / "other.toml", [0.01], 1, training={**TRAINING, "max_steps": 3})
    code, _, err = run(capsys, "submit", str(other), "--executor", "local")
    assert code == 2 and "differs in: training.max_steps: 2 at the root, 3 here" in err


def test_a_union_of_two_grids_is_frozen_when_neither_holds_the_other(
        tmp_path: Path, capsys: Any) -> None:
    f = write(tmp_path / "study.toml", [0.01], 1)
    paths = Paths(tmp_path / "root")
    assert run(capsys, "submit", str(f), "--executor", "local", "--no-progress")[0] == 0
    write(f, [0.02], 1)
    code, out, _ = run(capsys, "submit", str(f), "--executor", "local", "--no-progress")
    assert code == 0 and "submitted 1 trial(s)" in out
    frozen = paths.study_file.read_text()
    assert tomllib.loads(frozen)["radii"] == [0.01, 0.02]
    code, out, _ = run(capsys, "status", "--root", str(paths.root), "--json")
    assert json.loads(out)["counts"]["done"] == 2


def test_a_table_from_before_the_grid_could_grow_is_still_read(tmp_path: Path) -> None:
    """Rows carrying the fingerprint with the grid (what tables held before) are the same
    study's; any other fingerprint is another study's."""
    from jobs import load_study
    from reduce.errors import ReduceError
    from reduce.table import StudyIdentity, empty_table, read_table

    study = load_study(write(tmp_path / "study.toml", [0.01], 1))
    assert study.grid_fingerprint != study.fingerprint
    row = {c: None for c in empty_table().columns}
    row.update(method="regular", radius=0.01, trial=0, metric="clean_accuracy", value=0.5,
               key=FIRST, study=study.name, study_fingerprint=study.grid_fingerprint, format=1,
               failed_training=False, error="")
    table = tmp_path / "metrics.parquet"
    pd.DataFrame([row]).to_parquet(table)
    identity = StudyIdentity(study.name, study.fingerprint, (study.grid_fingerprint,))
    assert len(read_table(table, identity)) == 1
    other_file = write(tmp_path / "other.toml", [0.01], 1,
                       training={**TRAINING, "max_steps": 3})
    other = load_study(other_file)
    with pytest.raises(ReduceError, match="belongs to another study"):
        read_table(table, StudyIdentity(other.name, other.fingerprint,
                                        (other.grid_fingerprint,)))
