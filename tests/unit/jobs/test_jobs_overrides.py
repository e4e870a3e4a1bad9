"""`--set KEY=VALUE`: validated like the file, frozen into the root, science changes refused."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fake_scheduler import FAKE, FakeScheduler

from drosweep.cli import main
from jobs import load_study
from jobs.evaluation import EvalSettings
from jobs.overrides import apply_overrides, dump_toml
from jobs.paths import Paths
from studies import study_text, write_study

FULL = {**FAKE, "cluster": {**FAKE["cluster"], "sbatch_extra": {"exclude": "node[1-3]"}},
        "evaluation": {"pgd_steps": 3}}


def test_dump_reads_back_to_the_same_data(tmp_path: Path) -> None:
    data = tomllib.loads(study_text(tmp_path / "rööt", **FULL))
    data["training"]["lr"] = 1e-05
    data["root"] = 'we"ird\\path\tand tab'
    data["cluster"]["setup"] = ["module load x", "export A='b'"]
    assert tomllib.loads(dump_toml(data)) == data


def test_overrides_apply_and_validate(tmp_path: Path, capsys: Any) -> None:
    f = write_study(tmp_path, **FULL)
    study = load_study(f, overrides=["training.epochs=10", "cluster.partition=a100",
                                     "cluster.sbatch_extra.exclude=node9", "trials=5"])
    assert study.settings.epochs == 10 and study.cluster.partition == "a100"
    assert study.cluster.sbatch_extra == {"exclude": "node9"} and study.trials == 5
    assert study.evaluation == EvalSettings(pgd_steps=3)
    assert study.text.startswith(f"# {f} with command-line overrides:\n"
                                 f"# drosweep --set training.epochs=10\n")
    assert main(["plan", str(f), "--set", "training.epochs=10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 6
    # nothing to override: the file's own text, untouched
    assert load_study(f).text == f.read_text()
    assert apply_overrides("a = 1", "x", []) == "a = 1"


@pytest.mark.parametrize("item, message", [
    ("training.epochz=10", "epochz"),
    ("cluster.max_pack=0", "key 'cluster.max_pack': must be an integer >= 1"),
    ("colour=blue", "key 'colour': unknown key"),
    ("trials", "expected KEY=VALUE"),
    ("name.first=x", "name is not a table"),
    ("cluster.partition=[1, 2]", "key 'cluster.partition': must be a non-empty string"),
])
def test_bad_override_is_one_line(tmp_path: Path, capsys: Any, item: str, message: str) -> None:
    f = write_study(tmp_path, **FAKE)
    assert main(["plan", str(f), "--set", item]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_frozen_study_records_overrides_and_resume_checks_science(
        tmp_path: Path, capsys: Any, fake: FakeScheduler) -> None:
    f = write_study(tmp_path, **FAKE)
    assert main(["submit", str(f), "--set", "training.epochs=3"]) == 0
    frozen = Paths(tmp_path / "root").study_file.read_text()
    assert "# drosweep --set training.epochs=3" in frozen
    assert tomllib.loads(frozen)["training"]["epochs"] == 3
    capsys.readouterr()
    # the file without the override: the root's applies, said in one line on stderr
    assert main(["status", str(f)]) == 0
    assert capsys.readouterr().err == (f"drosweep: {tmp_path / 'root'} was submitted with --set "
                                       f"training.epochs=3: applied\n")
    # another value of the same key is another study: refused, with the way out
    assert main(["resume", str(f), "--set", "training.epochs=4"]) == 2
    err = capsys.readouterr().err
    assert ("differs in: training.epochs: 3 at the root, 4 here; it was submitted with --set "
            "training.epochs=3") in err and len(err.splitlines()) == 1
    # the same science with another partition: a resume may change where it runs
    assert main(["resume", str(f), "--set", "training.epochs=3",
                 "--set", "cluster.partition=other", "--dry-run"]) == 0
    assert "would submit 0 trial(s)" in capsys.readouterr().out
