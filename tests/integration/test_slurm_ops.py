"""The operator's commands on the real local SLURM: status --detailed, logs, cancel, resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from slurm_helpers import wait_for, wait_settled

from cluster import TrialState, study_status
from drosweep.cli import main
from jobs import Paths, Study, expand, read_done
from trainers.progress import read_progress

pytestmark = pytest.mark.slurm

STEPS = 1500


def detailed(study: Study, capsys: Any) -> dict[str, dict[str, Any]]:
    assert main(["status", str(study.source), "-v", "--json"]) == 0
    return {r["key"]: r for r in json.loads(capsys.readouterr().out)["trials"]}


def test_cancel_part_then_all_then_resume(make_study: Callable[..., Study], capsys: Any) -> None:
    study = make_study(methods=("regular",), trials=2, epochs=100000,
                       training=f"max_steps = {STEPS}\ncheckpoint_every = 100")
    first, second = (t.key for t in expand(study))
    paths = Paths(study.root)
    assert main(["submit", str(study.source)]) == 0
    capsys.readouterr()
    def checkpointed() -> bool:  # progress.json comes with the first progress line, at step 0
        progress = read_progress(paths.progress(first))
        return progress is not None and progress.step > 0

    wait_for(checkpointed, 180, 0.5, "a first checkpoint")

    row = detailed(study, capsys)[first]
    assert row["state"] == "running" and row["job_id"].count("_") == 1
    assert row["host"] and 0 < row["steps"] < row["total_steps"] == STEPS

    assert main(["logs", str(study.source), first, "--tail", "3"]) == 0
    out = capsys.readouterr().out
    assert f"slurm task {row['job_id']}" in out and "_log.out <==" in out

    # cancel one trial (its task): the other goes on
    assert main(["cancel", str(study.source), "--trials", "0"]) == 0
    assert f"1 SLURM task(s) ({row['job_id']})" in capsys.readouterr().out

    def first_stopped() -> bool:
        states = {t.trial.key: t.state for t in study_status(study).trials}
        return states[first] in (TrialState.STOPPED, TrialState.FAILED, TrialState.MISSING)

    wait_for(first_stopped, 120, 1.0, "the cancelled trial to stop")
    assert {t.trial.key: t.state for t in study_status(study).trials}[second] in (
        TrialState.RUNNING, TrialState.PENDING, TrialState.DONE)
    assert paths.checkpoint(first).exists() and read_done(paths, first) is None
    # cancelled part way, with its checkpoint: stopped (resume trains it on), not failed
    assert {t.trial.key: t.state for t in study_status(study).trials}[first] is \
        TrialState.STOPPED

    if read_done(paths, second) is None:  # cancel the rest
        assert main(["cancel", str(study.source)]) in (0, 2)
        capsys.readouterr()
    wait_settled(study, timeout=120)
    assert main(["cancel", str(study.source)]) == 2
    assert "nothing live to cancel" in capsys.readouterr().err

    # resume trains the cancelled trials on from their checkpoints
    assert main(["resume", str(study.source)]) == 0
    capsys.readouterr()
    status = wait_settled(study, timeout=900)
    assert status.counts[TrialState.DONE] == 2, status.to_json()
    marker = read_done(paths, first)
    assert marker is not None and marker.steps == STEPS and marker.resumed_from > 0
