"""The smoothed max's kept samples per step are recorded where the planner and the operator read
them: the progress file and the training result (which the DONE marker takes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainers.loop import TrainPaths, train
from trainers.spec import Method, TrainSettings, TrainSpec

SMALL = {"epochs": 1, "train_subset": 40, "batch_size": 10, "temp_steps": 2, "n_base": 30,
         "checkpoint_every": 2}

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("method", [Method.ROBUST, Method.LANGEVIN])
def test_kept_samples_in_progress_and_result(tmp_path: Path, method: Method) -> None:
    settings = TrainSettings.from_dict({**SMALL, "langevin_points": 20})
    spec = TrainSpec(method, 0.1, 3, settings, "synthetic")
    paths = TrainPaths(tmp_path / "m.pt", tmp_path / "c.pt", tmp_path / "progress.json")
    result = train(spec, paths, progress=False)
    assert result.kept is not None and result.kept["steps"] == 4
    n = 20 if method is Method.LANGEVIN else int(30 * 100 ** (0.1 / 0.24))
    # T = 1 on the first step: every sample of every point is kept
    assert result.kept["max"] == 10 * n
    assert 0 < result.kept["mean"] <= result.kept["max"]
    saved = json.loads(paths.progress.read_text())  # type: ignore[union-attr]
    assert saved["kept"] == result.kept


def test_regular_records_none(tmp_path: Path) -> None:
    spec = TrainSpec(Method.REGULAR, 0.0, 3, TrainSettings.from_dict(SMALL), "synthetic")
    paths = TrainPaths(tmp_path / "m.pt", tmp_path / "c.pt", tmp_path / "progress.json")
    assert train(spec, paths, progress=False).kept is None
    assert json.loads(paths.progress.read_text())["kept"] is None  # type: ignore[union-attr]
