"""A root remembers how it was launched: its `--set` overrides (the frozen study's header) and its
executor (the ledger), so every command works from the root alone or from the file without the
flags, and every hint is a complete command to paste."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from cluster import ledger
from drosweep.cli import main
from jobs import Paths, expand, load_study
from jobs.commands import study_command
from jobs.frozen import load_at_root
from studies import write_study

# the study of these tests: write_study(tmp_path, root=tmp_path / "default", **REMEMBERED)
REMEMBERED: dict[str, Any] = {"name": "remembered", "radii": [0.01], "trials": 2,
                              "training": {"epochs": 1, "max_steps": 2, "batch_size": 20},
                              "cluster": {"gpus_per_task": 0, "device": "cpu"}}


def test_a_local_root_works_without_its_flags(tmp_path: Path, capsys: Any,
                                              stub_command: Any, no_slurm_needed: None) -> None:
    stub_command("sbatch", "echo 'sbatch must not be called' >&2; exit 1")
    f = write_study(tmp_path, root=tmp_path / "default", **REMEMBERED)
    root = tmp_path / "elsewhere"
    assert main(["submit", str(f), "--root", str(root), "--executor", "local", "--no-progress",
                 "--set", "training.max_steps=3", "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert f"see `drosweep status {f} --root {root}` and {root}/logs" in out  # a complete hint
    keys = [t.key for t in expand(load_study(f, root=root))]

    # from the root alone: the study frozen there, overrides included
    assert main(["status", "--root", str(root), "--json"]) == 0
    captured = capsys.readouterr()
    counts = json.loads(captured.out)["counts"]
    assert (counts["done"], counts["missing"]) == (1, 1) and captured.err == ""
    assert main(["logs", "--root", str(root), keys[0]]) == 0
    assert f"{keys[0]}: local task" in capsys.readouterr().out

    # the file without the flags: the root's overrides apply, one line on stderr says so
    assert main(["status", str(f), "--root", str(root)]) == 0
    captured = capsys.readouterr()
    assert "done 1" in captured.out
    assert captured.err == f"drosweep: {root} was submitted with --set training.max_steps=3: " \
                           f"applied\n"

    # resume without --executor: the last submission's (local), never SLURM
    assert main(["resume", str(f), "--root", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "local run finished: 0 failure(s)" in out
    assert f"`drosweep status {f} --root {root}`" in out
    assert [s.executor for s in ledger.read(Paths(root).ledger)] == ["local", "local"]
    done = json.loads(Paths(root).done(keys[1]).read_text())
    assert done["steps"] == 3  # trained with the root's override, not the file's max_steps = 2

    # report before reduce: the command that writes the table, complete
    assert main(["report", "--root", str(root)]) == 2
    assert f"run `drosweep reduce --root {root}` first" in capsys.readouterr().err

    # cancel from the root alone takes its words as keys (nothing live here: said in one line)
    assert main(["cancel", "--root", str(root), keys[0]]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "nothing live to cancel in study remembered" in err[0]

    # an explicit --set of another value: refused in one line naming key and both values
    assert main(["status", str(f), "--root", str(root), "--set", "training.max_steps=4"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "training.max_steps: 3 at the root, 4 here" in err[0]


def test_the_roots_overrides_are_said_only_when_they_change_something(tmp_path: Path) -> None:
    f = write_study(tmp_path, **REMEMBERED)
    paths = Paths(tmp_path / "root")
    paths.root.mkdir()
    paths.study_file.write_text(load_study(f, overrides=["training.max_steps=3"]).text)
    study, said = load_at_root(f, None)
    assert said == ("training.max_steps=3",) and study.settings.max_steps == 3
    write_study(tmp_path, **{**REMEMBERED, "training": {**REMEMBERED["training"], "max_steps": 3}})
    study, said = load_at_root(f, None)
    assert said == () and study.settings.max_steps == 3


def test_resume_from_a_root_without_submissions_defaults_to_slurm(
        tmp_path: Path, capsys: Any, stub_command: Any, no_slurm_needed: None) -> None:
    stub_command("sbatch", "exit 1")
    f = write_study(tmp_path, **REMEMBERED)
    assert main(["resume", str(f), "--dry-run"]) == 2
    assert f"use `drosweep submit {f}`" in capsys.readouterr().err


def test_a_root_alone_without_a_study_is_one_line(tmp_path: Path, capsys: Any) -> None:
    assert main(["status", "--root", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "no study was submitted at" in err[0]
    assert main(["status"]) == 2
    assert "give the study file, or --root DIR" in capsys.readouterr().err


@pytest.mark.parametrize("given_root, expected", [
    (None, "drosweep resume {f}"),
    ("other dir", "drosweep resume {f} --root '{cwd}/other dir'"),
])
def test_hints_name_the_file_and_a_root_that_is_not_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given_root: str | None,
        expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    f = write_study(Path(), root="root", **REMEMBERED)
    study = load_study(f, root=given_root)
    assert study_command("resume", study) == expected.format(f=f, cwd=tmp_path)
    frozen = Paths(study.root).study_file
    frozen.parent.mkdir(parents=True)
    frozen.write_text(f.read_text())
    alone = load_study(frozen, root=study.root)
    assert study_command("status --verify", alone) == \
        f"drosweep status --verify --root {shlex.quote(str(study.root))}"
