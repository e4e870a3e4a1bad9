"""A failed training is one below the paper's 0.12 or below chance, whichever is higher."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import parse_study
from reduce import failed_threshold_for
from studies import study_text


@pytest.mark.parametrize(("dataset", "expected"), [("avila", 0.12), ("moons", 0.5),
                                                   ("doughnut", 0.5)])
def test_threshold_follows_the_class_count(tmp_path: Path, dataset: str,
                                           expected: float) -> None:
    study = parse_study(study_text(tmp_path, name="f", dataset=dataset), Path("f.toml"))
    assert failed_threshold_for(study) == pytest.approx(expected)
    assert failed_threshold_for(study, 0.3) == 0.3  # --failed-below wins
