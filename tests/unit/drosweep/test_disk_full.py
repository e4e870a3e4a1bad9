"""A full disk leaves nothing behind: a refused submit no root, lock or frozen study; a train that
could not write its first checkpoint no save folder."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

import cluster.submission
from common.atomic import StorageError
from drosweep.cli import main
from studies import write_study

FULL: dict[str, Any] = {"file": "s.toml", "name": "full", "trials": 2,
                        "training": {"epochs": 1, "max_steps": 2},
                        "cluster": {"gpus_per_task": 0, "device": "cpu"}}


def _enospc(path: object, *args: object) -> None:
    raise StorageError.of(Path(str(path)), OSError(errno.ENOSPC, "No space left on device"))


@pytest.mark.parametrize("existing_root", [False, True])
def test_full_disk_at_submit_submits_nothing_and_leaves_nothing(
        existing_root: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "a" / "root"
    if existing_root:
        root.mkdir(parents=True)
    f = write_study(tmp_path, root=root, **FULL)
    submitted: list[object] = []
    monkeypatch.setattr(cluster.submission, "atomic_write_text", _enospc)
    real_packs = cluster.submission._packs

    def packs(*args: object, **kw: object) -> object:
        submitted.append(args)  # built just before the first array goes to the executor
        return real_packs(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cluster.submission, "_packs", packs)
    assert main(["submit", str(f), "--executor", "local", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "study.toml: cannot write" in err, err
    assert submitted  # it got as far as submitting
    if existing_root:
        assert os.listdir(root) == []
    else:
        assert not (tmp_path / "a").exists()


def test_full_disk_at_the_first_checkpoint_leaves_no_save_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import trainers.checkpoint

    monkeypatch.setattr(trainers.checkpoint, "atomic_torch_save_verified",
                        lambda obj, path: _enospc(path))
    save = tmp_path / "new" / "save"
    assert main(["train", "-t", "regular", "-r", "0", "-i", "0", "--dataset", "synthetic",
                 "--epochs", "1", "--checkpoint-every", "2", "-s", str(save),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "eps_0.0_trial_0.ckpt: cannot write" in err
    assert not (tmp_path / "new").exists()


def test_full_disk_mid_study_names_each_trial_and_its_own_file_on_stderr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import trainers.checkpoint

    f = write_study(tmp_path, **{**FULL, "training": {"epochs": 1, "max_steps": 2,
                                                      "checkpoint_every": 1}})
    real = trainers.checkpoint.atomic_torch_save_verified

    def second_trial_full(obj: object, path: Path) -> str:
        if "trial_1" in str(path):  # the disk fills as the second trial of the pack writes
            _enospc(path)
        return real(obj, path)

    monkeypatch.setattr(trainers.checkpoint, "atomic_torch_save_verified", second_trial_full)
    assert main(["submit", str(f), "--executor", "debug", "--no-progress"]) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    first = next(x for x in lines if x.startswith("regular/eps_0/trial_0: "))
    second = next(x for x in lines if x.startswith("regular/eps_0/trial_1: "))
    assert "trial_1/ckpt.pt: cannot write (No space left on device)" in second
    assert "ckpt.pt" not in first and "regular/eps_0/trial_1 could not write" in first
    assert "FailedJobError" not in out + err
