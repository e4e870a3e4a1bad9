"""The reduce / plot / report / demo subcommands: exit codes and messages on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from reduce_support import save_model
from test_plots_render import fake_table

from drosweep.cli import main
from jobs import Paths, expand, load_study
from studies import write_study

TINY = {"file": "tiny.toml", "name": "tiny", "methods": ["regular", "robust"],
        "radii": [0.05, 0.1], "trials": 2, "training": {"epochs": 1, "hidden": 16}}


def test_incomplete_study_is_refused_with_exit_code_2(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reduce", str(write_study(tmp_path, **TINY)), "--no-progress"]) == 2
    assert "incomplete: 0 of 6 trials done" in capsys.readouterr().err


def test_wait_timeout_exits_2_naming_the_missing(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, **TINY)
    study = load_study(path)
    save_model(Paths(study.root), expand(study)[0], seed=0)
    code = main(["reduce", str(path), "--wait", "--timeout", "0.3", "--poll", "0.1",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "timed out" in err and "5 of 6 trial(s) not finished" in err


def test_bad_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reduce", str(write_study(tmp_path, **TINY)), "--timeout", "-1"]) == 2
    assert "--timeout must be > 0" in capsys.readouterr().err


def test_foreign_table_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, **TINY)
    study = load_study(path)
    for i, trial in enumerate(expand(study)):
        save_model(Paths(study.root), trial, seed=i)
    table = Paths(study.root).metrics_parquet
    table.parent.mkdir(parents=True)
    df = fake_table()
    df["format"], df["study_fingerprint"] = 1, "f" * 64
    df.to_parquet(table)
    assert main(["reduce", str(path), "--no-progress"]) == 2
    assert "belongs to another study" in capsys.readouterr().err


def test_plot_and_report_from_the_table(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, **TINY)
    root = Paths(load_study(path).root)
    assert main(["report", str(path)]) == 2
    assert "no results table" in capsys.readouterr().err
    root.results.mkdir(parents=True)
    fake_table().to_parquet(root.metrics_parquet)
    assert main(["plot", str(path)]) == 0
    assert (root.figures / "worst_case_accuracy.pdf").is_file()
    assert main(["report", str(path), "--clean-margin", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "PASS: median worst-case accuracy of robust > regular beyond the spread at ε=0.1" in out
    assert f"report: {root.report}" in out
    text = root.report.read_text()
    assert "within 0.1 of regular" in text and 'name = "tiny"' in text
    assert not pd.read_parquet(root.metrics_parquet).empty


def test_bad_evaluation_table_fails_before_waiting(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, **TINY)
    path.write_text(path.read_text() + "[evaluation]\npgd_stepz = 3\n")
    assert main(["reduce", str(path), "--wait", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "table 'evaluation': unknown key(s) ['pgd_stepz']" in err


def test_reduce_and_report_print_one_json_object(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, file="one.toml", name="one", training={"epochs": 1, "hidden": 16},
                       evaluation={"test_subset": 60, "ball_samples": 40, "mean_samples": 20,
                                   "pgd_steps": 3, "ga_population": 6, "ga_generations": 3,
                                   "ga_elite": 1})
    study = load_study(path)
    paths = Paths(study.root)
    save_model(paths, expand(study)[0], seed=0)
    assert main(["reduce", str(path), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)  # progress bars went to stderr
    assert body["parquet"] == str(paths.metrics_parquet) and body["rows"] > 0
    assert (body["evaluated"], body["reused"], body["errors"]) == (1, 0, [])
    assert body["missing"] == [] and body["failed"] == []
    assert main(["report", str(path), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["report"] == str(paths.report) and paths.report.is_file()
    assert {c["verdict"] for c in body["claims"]} <= {"PASS", "FAIL", "SKIP"} and body["claims"]
    assert body["figures"] and all(Path(f).is_file() for f in body["figures"])
    assert main(["report", str(path)]) == 0
    assert not capsys.readouterr().out.lstrip().startswith("{")  # without --json: the lines
