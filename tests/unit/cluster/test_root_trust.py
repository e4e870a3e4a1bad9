"""A study root (and its logs/, whose pickles every task loads) may be written by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cluster.submission import _locked
from cluster.trust import trust_problem
from drosweep.cli import main
from jobs import Paths
from studies import write_study

TRUST = {"file": "s.toml", "name": "trust", "training": {"epochs": 1, "max_steps": 1},
         "cluster": {"gpus_per_task": 0, "device": "cpu"}}


@pytest.mark.parametrize(("folder", "mode", "who"), [("", 0o775, "its group"),
                                                     ("", 0o757, "everyone"),
                                                     ("logs", 0o777, "its group and everyone")])
def test_a_root_others_can_write_is_refused(folder: str, mode: int, who: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    f, root = write_study(tmp_path, **TRUST), tmp_path / "root"
    target = root / folder
    target.mkdir(parents=True)
    os.chmod(target, mode)
    for command in ("submit", "resume"):
        assert main([command, str(f), "--executor", "local"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"writable by {who}" in err, err
        assert f"chmod go-w {target}" in err
    assert sorted(p.name for p in root.iterdir()) == (["logs"] if folder else [])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder to another user")
def test_a_root_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir(mode=0o755)
    os.chown(root, 4321, -1)
    problem = trust_problem(root)
    assert problem is not None and "owned by uid 4321" in problem


def test_folders_a_submission_creates_are_its_owners_alone(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "new" / "root")
    old = os.umask(0o002)  # a shared-group umask
    try:
        with _locked(paths):
            pass
    finally:
        os.umask(old)
    for folder in (paths.root, paths.logs):
        assert not stat.S_IMODE(folder.stat().st_mode) & 0o022, folder
        assert trust_problem(folder) is None
