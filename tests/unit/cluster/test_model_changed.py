"""Plain `status` and `resume` see a model file that no longer matches its DONE marker (a stat of
size and modification time on every call, no hashing)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from cluster import TrialState, study_status
from drosweep.cli import main
from jobs import Paths, expand, load_study, read_done
from studies import write_study

CHANGED: dict[str, Any] = {"name": "changed", "radii": [0.01], "trials": 2,
                           "training": {"epochs": 1, "max_steps": 2, "batch_size": 20},
                           "cluster": {"gpus_per_task": 0, "device": "cpu"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("trained")
    f = write_study(base, **CHANGED)
    assert main(["submit", str(f), "--executor", "local", "--no-progress"]) == 0
    return base


def _copy(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained / "root", tmp_path / "root", copy_function=shutil.copy2)
    f = write_study(tmp_path, **CHANGED)
    return f


def _damage(paths: Paths, keys: list[str], how: str) -> None:
    model = paths.model(keys[0])
    if how == "truncated":
        with open(model, "r+b") as fh:
            fh.truncate(100)
    elif how == "deleted":
        model.unlink()
    elif how == "swapped":  # the other trial's model, same size
        shutil.copyfile(paths.model(keys[1]), model)
    elif how == "touched":  # same bytes, rewritten later
        data = model.read_bytes()
        st = model.stat()
        model.write_bytes(data)
        os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.mark.parametrize("how", ["truncated", "deleted", "swapped", "touched"])
def test_plain_status_and_resume_see_a_changed_model(how: str, trained: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    f = _copy(trained, tmp_path)
    study = load_study(f)
    paths = Paths(study.root)
    keys = [t.key for t in expand(study)]
    assert {t.state for t in study_status(study).trials} == {TrialState.DONE}
    _damage(paths, keys, how)
    status = study_status(study)
    states = {t.trial.key: t for t in status.trials}
    assert states[keys[0]].state is TrialState.CHANGED and str(paths.model(keys[0])) in \
        states[keys[0]].detail
    assert states[keys[1]].state is TrialState.DONE
    capsys.readouterr()
    assert main(["status", str(f)]) == 0
    out = capsys.readouterr().out
    assert f"changed {keys[0]}" in out and "status --verify" in out
    assert main(["resume", str(f), "--executor", "local"]) == 0
    out = capsys.readouterr().out
    assert "1 done trial(s) whose model file changed" in out and keys[0] in out
    assert "submitted 0 trial(s)" in out
    assert read_done(paths, keys[0]) is not None  # never trained over


def test_a_marker_records_the_model_as_written_and_older_markers_stay_done(
        trained: Path, tmp_path: Path) -> None:
    f = _copy(trained, tmp_path)
    study = load_study(f)
    paths = Paths(study.root)
    key = expand(study)[0].key
    marker = read_done(paths, key)
    assert marker is not None
    st = paths.model(key).stat()
    assert (marker.model_size, marker.model_mtime_ns) == (st.st_size, st.st_mtime_ns)
    data = json.loads(paths.done(key).read_text())
    del data["model_size"], data["model_mtime_ns"]  # a marker from before they were recorded
    paths.done(key).write_text(json.dumps(data))
    os.utime(paths.model(key), ns=(st.st_atime_ns, st.st_mtime_ns + 5))
    assert next(t for t in study_status(study).trials if t.trial.key == key).state \
        is TrialState.DONE
