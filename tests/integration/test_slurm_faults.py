"""Faults on the real local SLURM: preemption (checkpoint + requeue), a task killed hard."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from slurm_helpers import Cluster, run, sacct_history, wait_for, wait_settled

from cluster import TrialState, resume, study_status, submit
from jobs import Paths, Study, expand, read_done

pytestmark = pytest.mark.slurm

STEPS = 4000  # regular on synthetic data: 1-20 ms per step (idle or busy machine)


def test_preempted_task_resumes_from_its_checkpoint(make_study: Callable[..., Study],
                                                    slurm_cluster: Cluster) -> None:
    # the task holds every CPU of the node, so an urgent job can only run by preempting it
    every, steps = 500, 2 * STEPS
    study = make_study(methods=("regular",), trials=1, epochs=100000, cpus=slurm_cluster.cpus,
                       training=f"max_steps = {steps}\ncheckpoint_every = {every}")
    trial = expand(study)[0]
    paths = Paths(study.root)
    job = submit(study, "slurm", progress=False).job_ids[0]
    # the first periodic checkpoint says training is under way: preempt now
    wait_for(lambda: paths.checkpoint(trial).exists(), 120, 0.1, "training to be under way")
    assert read_done(paths, trial) is None
    urgent = run(["sbatch", "--parsable", "-p", "urgent", "-c", "1", "--mem", "100M",
                  "-o", "/dev/null", "-J", f"drosweep-{study.name}-urgent", "--wrap", "sleep 1"])
    assert urgent.returncode == 0, urgent.stderr
    try:
        status = wait_settled(study, timeout=600)
    finally:
        run(["scancel", urgent.stdout.strip().split(";")[0]])
    assert status.counts[TrialState.DONE] == 1, status.to_json()
    marker = read_done(paths, trial)
    assert marker is not None and marker.steps == steps
    # the requeued run started where the preempted one stopped (fewer steps in total than a
    # restart from zero, which would be resumed_from + steps), from the checkpoint written on
    # the preemption signal: not one of the periodic ones
    assert every <= marker.resumed_from < steps
    assert marker.resumed_from % every != 0, marker.resumed_from
    # the marker comes first; the job ends a moment later
    history = wait_for(lambda: (h := sacct_history(job)) and h[-1] == "COMPLETED" and h, 60,
                       1.0, f"job {job} to complete")
    assert "REQUEUED" in history or "PREEMPTED" in history, history


@pytest.mark.parametrize("how", ["scancel", "sigkill"])
def test_killed_task_shows_not_done_and_resume_finishes_it(
        make_study: Callable[..., Study], how: str) -> None:
    study = make_study(methods=("regular",), trials=1, epochs=100000, suffix=f"-{how}",
                       training=f"max_steps = {STEPS}\ncheckpoint_every = 200")
    trial = expand(study)[0]
    paths = Paths(study.root)
    job = submit(study, "slurm", progress=False).job_ids[0]
    wait_for(lambda: paths.checkpoint(trial).exists(), 120, 0.1, "a periodic checkpoint")
    killed = time.monotonic()
    if how == "scancel":  # SIGTERM, SIGKILL after KillWait: the task checkpoints and stops
        run(["scancel", job])
    else:  # every process of the job gets SIGKILL: no handler runs, no result is written
        run(["scancel", "--signal=KILL", "--full", job])

    def not_live() -> bool:
        state = {t.trial.key: t.state for t in study_status(study).trials}[trial.key]
        return state in (TrialState.STOPPED, TrialState.FAILED, TrialState.MISSING)

    wait_for(not_live, 60, 1.0, "status to show the killed trial as not done")
    print(f"{how}: status showed it not done after {time.monotonic() - killed:.1f}s")
    assert read_done(paths, trial) is None

    again = resume(study, "slurm", progress=False)
    assert [t.key for t in again.plan.trials] == [trial.key]
    status = wait_settled(study, timeout=600)
    assert status.counts[TrialState.DONE] == 1, status.to_json()
    marker = read_done(paths, trial)
    assert marker is not None and marker.steps == STEPS and marker.resumed_from > 0
    assert marker.slurm_job_id in again.job_ids
