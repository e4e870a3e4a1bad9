"""The cluster boundary on the real local SLURM: an interpreter path and a study root with
spaces work (submitit gets the interpreter quoted)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from slurm_helpers import wait_settled

from cluster import TrialState
from jobs import Study

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slurm


def test_interpreter_and_root_with_spaces(make_study: Callable[..., Study],
                                          tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    spaced = tmp_path / "a venv with spaces"
    spaced.symlink_to(venv, target_is_directory=True)  # sys.executable keeps the spaced path
    python = spaced / "bin" / Path(sys.executable).name
    study = make_study(methods=("regular",), trials=1, training="max_steps = 3",
                       root=tmp_path / "root with spaces")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(python), "-m", "drosweep", "submit", str(study.source),
                           "--no-progress"], capture_output=True, text=True, timeout=120,
                          env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    status = wait_settled(study, timeout=240)
    assert status.counts[TrialState.DONE] == 1, status.to_json()
    verify = subprocess.run([str(python), "-m", "drosweep", "status", str(study.source),
                             "--verify"], capture_output=True, text=True, timeout=120, env=env,
                            cwd=REPO)
    assert verify.returncode == 0 and "0 not matching" in verify.stdout, verify.stdout
