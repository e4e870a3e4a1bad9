"""The job chained after a study's arrays: reduce what finished, then figures and report; with
nothing finished, the table alone and one line saying why there are no figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from reduce_support import finish_all

from jobs import Paths, parse_study
from pipeline import reduce_and_report
from studies import study_text


def frozen_study(root: Path):  # type: ignore[no-untyped-def]
    text = study_text(root, name="chained", methods=["regular", "robust"],
                      training={"epochs": 1, "hidden": 16},
                      evaluation={"test_subset": 60, "ball_samples": 40, "mean_samples": 20,
                                  "pgd_steps": 3, "ga_population": 6, "ga_generations": 3,
                                  "ga_elite": 1})
    paths = Paths(root)
    paths.root.mkdir(parents=True)
    paths.study_file.write_text(text)  # as `submit` freezes it
    return parse_study(text, paths.study_file)


def test_chained_job_reduces_then_reports(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    study = frozen_study(tmp_path / "root")
    finish_all(study)
    paths = Paths(study.root)
    assert reduce_and_report(str(study.root), device="cpu") == str(paths.report)
    out = capsys.readouterr().out
    assert "results: " in out and "2 model(s) evaluated" in out and f"report: {paths.report}" in out
    assert paths.report.is_file() and (paths.figures / "pgd_accuracy.png").is_file()


def test_chained_job_with_nothing_finished_keeps_the_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = frozen_study(tmp_path / "root")
    paths = Paths(study.root)
    assert reduce_and_report(str(study.root), device="cpu") == str(paths.metrics_parquet)
    out = capsys.readouterr().out
    assert "partial: 2 trial(s) not finished" in out and "no figures: " in out
    assert not paths.report.exists()
