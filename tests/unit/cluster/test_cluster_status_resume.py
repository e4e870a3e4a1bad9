"""Status decisions (markers first, one faked sacct call) and resume selection, with a fake
scheduler; the integration tests repeat the important ones against a real SLURM."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_scheduler import FAKE, FakeScheduler

from cluster import TrialState, resume, study_status, submit
from cluster.errors import ClusterError
from cluster.executors.slurm import SlurmExecutor
from cluster.status import SACCT_GRACE_S
from drosweep.cli import main
from jobs import Paths, StudyError, expand, load_study, write_done, write_failed
from jobs.pack import TaskPack
from jobs.study import Study
from studies import write_study


def done(study: Study, key: str) -> None:
    trial = next(t for t in expand(study) if t.key == key)
    write_done(Paths(study.root), trial, model_sha256="0" * 64, steps=1, epochs=1, wall_s=1.0,
               final_loss=0.0, resumed_from=0)


def failed(study: Study, key: str, job_id: str | None = None,
           monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    trial = next(t for t in expand(study) if t.key == key)
    if monkeypatch is not None and job_id is not None:
        array, index = job_id.split("_")
        monkeypatch.setenv("SLURM_ARRAY_JOB_ID", array)
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", index)
    write_failed(Paths(study.root), trial, ValueError("boom"))
    if monkeypatch is not None:
        monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
        monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)


def states(status: Any) -> dict[str, TrialState]:
    return {t.trial.key: t.state for t in status.trials}


def test_unsubmitted_study_is_missing_without_sacct(tmp_path: Path, fake: FakeScheduler) -> None:
    study = load_study(write_study(tmp_path, **FAKE))
    status = study_status(study, sacct=fake.sacct)
    assert set(states(status).values()) == {TrialState.MISSING}
    assert status.counts[TrialState.MISSING] == 6 and fake.sacct_calls == 0
    assert set(status.to_json()["counts"]) == {"done", "running", "pending", "failed", "missing"}


def test_submit_then_states(tmp_path: Path, fake: FakeScheduler) -> None:
    study = load_study(write_study(tmp_path, **FAKE))
    result = submit(study, "slurm", sacct=fake.sacct)
    assert sorted(fake.keys()) == sorted(t.key for t in expand(study))
    assert result.array_ids == ("100",) and len(result.job_ids) == 4  # 3+3 trials, packs of 2
    tasks = fake.submitted[0]
    # not yet in accounting, within the grace period: pending
    assert set(states(study_status(study, sacct=fake.sacct)).values()) == {TrialState.PENDING}
    # ... and long after: nothing known, so missing
    late = time.time() + SACCT_GRACE_S + 10
    assert set(states(study_status(study, sacct=fake.sacct, now=late)).values()) == {
        TrialState.MISSING}
    # a running pack trains its trials (one method and radius) together
    first, second = tasks[0].keys
    fake.states = {"100_0": "RUNNING", "100_1": "PENDING", "100_2": "FAILED",
                   "100_3": "CANCELLED by 0"}
    calls = fake.sacct_calls
    st = states(study_status(study, sacct=fake.sacct))
    assert fake.sacct_calls == calls + 1  # one call per poll
    assert st[first] is TrialState.RUNNING and st[second] is TrialState.RUNNING
    assert all(st[k] is TrialState.PENDING for k in tasks[1].keys)
    assert all(st[k] is TrialState.FAILED for k in tasks[2].keys + tasks[3].keys)
    done(study, first)
    st = states(study_status(study, sacct=fake.sacct))
    assert st[first] is TrialState.DONE and st[second] is TrialState.RUNNING
    status = study_status(study, sacct=fake.sacct)
    details = {t.trial.key: t.detail for t in status.trials}
    assert "CANCELLED" in details[tasks[3].keys[0]]
    assert status.eta_s is not None and status.eta_s > 0


def test_failed_marker_and_requeued_job(tmp_path: Path, fake: FakeScheduler,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    study = load_study(write_study(tmp_path, **FAKE))
    submit(study, "slurm", sacct=fake.sacct)
    key = fake.submitted[0][0].keys[0]
    failed(study, key, "100_0", monkeypatch)
    fake.states = {"100_0": "RUNNING"}
    # this job failed the trial: failed, even though the job still runs the rest of its pack
    st = study_status(study, sacct=fake.sacct)
    assert states(st)[key] is TrialState.FAILED
    assert "ValueError: boom" in next(t.detail for t in st.trials if t.trial.key == key)
    # an older failure of a trial that a live job will retry: pending
    fake.states = {"100_0": "PENDING"}
    failed(study, key, "99_0", monkeypatch)
    assert states(study_status(study, sacct=fake.sacct))[key] is TrialState.PENDING


def test_resume_resubmits_only_failed_and_missing(tmp_path: Path, fake: FakeScheduler) -> None:
    study = load_study(write_study(tmp_path, **FAKE))
    with pytest.raises(StudyError, match=f"use `drosweep submit {study.source}`"):
        resume(study, "slurm", sacct=fake.sacct)
    assert not study.root.exists()
    submit(study, "slurm", sacct=fake.sacct)
    tasks = fake.submitted[0]
    fake.states = {"100_0": "COMPLETED", "100_1": "RUNNING", "100_2": "FAILED",
                   "100_3": "PENDING"}
    for key in tasks[0].keys:
        done(study, key)
    result = resume(study, "slurm", sacct=fake.sacct)
    assert sorted(fake.keys()) == sorted(tasks[2].keys)
    assert result.already_done == 2
    assert result.already_live == len(tasks[1].keys) + len(tasks[3].keys)
    # twice in a row: the resubmitted trials are now live (just submitted): nothing to do
    again = resume(study, "slurm", sacct=fake.sacct)
    assert len(fake.submitted) == 2 and again.plan.trials == () and again.job_ids == ()
    records = [json.loads(line) for line in Paths(study.root).ledger.read_text().splitlines()]
    assert [r["reason"] for r in records] == ["submit", "resume"]
    assert records[1]["tasks"][0]["keys"] == list(fake.submitted[1][0].keys)


class Rendezvous:
    """Holds every submission until each of `parties` resumes has either reached its own
    submission or is blocked on the study's lock: without the lock all of them have then read
    the status before any submits (the worst order, every time); with it, the others wait on
    the lock and the one holding it goes on."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.reached = 0          # resumes that reached sbatch (now or earlier)
        self.on_lock = 0          # resumes blocked in the lock's acquire
        self.cond = threading.Condition()

    def acquiring(self, delta: int) -> None:
        with self.cond:
            self.on_lock += delta
            self.cond.notify_all()

    def submitting(self) -> None:
        with self.cond:
            self.reached += 1
            self.cond.notify_all()
            if not self.cond.wait_for(lambda: self.reached + self.on_lock >= self.parties,
                                      timeout=60):
                raise AssertionError("resumes neither submitted nor waited on the lock")


def test_concurrent_resumes_do_not_double_submit(tmp_path: Path, fake: FakeScheduler,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import filelock

    study = load_study(write_study(tmp_path, **FAKE))
    submit(study, "slurm", sacct=fake.sacct)
    fake.states = {f"100_{i}": "FAILED" for i in range(4)}
    meet = Rendezvous(3)
    plain_submit = fake.submit

    def held_submit(executor: SlurmExecutor, packs: list[TaskPack]) -> list[str]:
        meet.submitting()
        return plain_submit(executor, packs)

    class CountedLock(filelock.FileLock):
        def acquire(self, *args: Any, **kwargs: Any) -> Any:
            meet.acquiring(+1)
            try:
                return super().acquire(*args, **kwargs)
            finally:
                meet.acquiring(-1)

    monkeypatch.setattr(fake, "submit", held_submit)
    monkeypatch.setattr(filelock, "FileLock", CountedLock)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            resume(study, "slurm", sacct=fake.sacct)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    resubmitted = [k for sub in fake.submitted[1:] for p in sub for k in p.keys]
    assert sorted(resubmitted) == sorted(t.key for t in expand(study))
    assert len(fake.submitted) == 2  # one resume submitted; the two others found them live


def test_dry_run_writes_nothing(tmp_path: Path, fake: FakeScheduler) -> None:
    study = load_study(write_study(tmp_path, **FAKE))
    result = submit(study, "slurm", dry_run=True, sacct=fake.sacct)
    assert result.dry_run and len(result.plan.trials) == 6
    assert not study.root.exists() and fake.submitted == []


def test_different_study_at_root(tmp_path: Path, fake: FakeScheduler) -> None:
    study = load_study(write_study(tmp_path, **FAKE))
    submit(study, "slurm", sacct=fake.sacct)
    ledger_before = Paths(study.root).ledger.read_bytes()
    other = load_study(write_study(tmp_path, **{**FAKE, "training": {"epochs": 2}}))
    with pytest.raises(StudyError, match=r"already holds a different study.*training\.epochs"):
        submit(other, "slurm", sacct=fake.sacct)
    with pytest.raises(StudyError, match="different study"):
        study_status(other, sacct=fake.sacct)
    assert Paths(study.root).ledger.read_bytes() == ledger_before
    # a change of cluster profile only is the same study
    moved = load_study(write_study(tmp_path, **{**FAKE, "cluster": {**FAKE["cluster"],
                                                                    "max_pack": 1}}))
    submit(moved, "slurm", sacct=fake.sacct)


def test_a_submission_refused_by_sbatch_leaves_no_trace(tmp_path: Path, fake: FakeScheduler,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """sbatch refusing the first array (under the lock, before any job exists): the root is
    removed again; at a root that holds a study, every file is as it was."""
    study = load_study(write_study(tmp_path, **FAKE))
    plain_submit, refuse = fake.submit, {"on": True}

    def maybe_refuse(executor: SlurmExecutor, packs: list[TaskPack]) -> list[str]:
        if refuse["on"]:
            raise ClusterError("sbatch: error: Batch job submission failed: Invalid partition")
        return plain_submit(executor, packs)

    monkeypatch.setattr(fake, "submit", maybe_refuse)
    with pytest.raises(ClusterError, match="Invalid partition"):
        submit(study, "slurm", sacct=fake.sacct)
    assert not study.root.exists()
    refuse["on"] = False
    submit(study, "slurm", sacct=fake.sacct)
    fake.states = {f"100_{i}": "FAILED" for i in range(4)}
    before = {p: p.read_bytes() for p in study.root.rglob("*") if p.is_file()}
    refuse["on"] = True
    with pytest.raises(ClusterError, match="Invalid partition"):
        resume(study, "slurm", sacct=fake.sacct)
    assert {p: p.read_bytes() for p in study.root.rglob("*") if p.is_file()} == before


def test_missing_data_refused(tmp_path: Path, fake: FakeScheduler,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROSWEEP_DATA_DIR", str(tmp_path / "nodata"))
    study = load_study(write_study(tmp_path, **{**FAKE, "dataset": "avila"}))
    with pytest.raises(StudyError, match=r"not found in .*nodata"):
        submit(study, "slurm", sacct=fake.sacct)
    assert not study.root.exists()


def test_cli_bad_input_exit_2_and_nothing_written(tmp_path: Path, capsys: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    study = load_study(write_study(tmp_path, **FAKE))
    path = str(study.source)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no sbatch
    assert main(["submit", path]) == 2
    err = capsys.readouterr().err.strip()
    assert "sbatch" in err and "\n" not in err
    assert not study.root.exists()
    (tmp_path / "bad.toml").write_text("name = [")
    assert main(["plan", str(tmp_path / "bad.toml")]) == 2
    assert "malformed TOML" in capsys.readouterr().err
    assert main(["submit", path, "--executor", "local", "--root", "/proc/1/nope"]) == 2
    assert "not writable" in capsys.readouterr().err
    assert main(["resume", path, "--executor", "local"]) == 2
    assert "no study was submitted" in capsys.readouterr().err
    assert not study.root.exists()


def test_cli_plan_and_status(tmp_path: Path, capsys: Any) -> None:
    study = load_study(write_study(tmp_path, **FAKE))
    assert main(["plan", str(study.source)]) == 0
    out = capsys.readouterr().out
    assert "6 trials" in out and "robust" in out and "total" in out
    assert main(["plan", str(study.source), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trials"] == 6 and sum(a["tasks"] for a in data["arrays"]) == data["tasks"]
    assert main(["status", str(study.source), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"done": 0, "running": 0, "pending": 0, "failed": 0, "missing": 6}
    assert main(["status", str(study.source), "--root", str(tmp_path / "elsewhere")]) == 0
    assert "elsewhere" in capsys.readouterr().out


def test_unknown_executor(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="unknown executor"):
        submit(load_study(write_study(tmp_path, **FAKE)), "kubernetes")


def test_then_is_chained_after_the_arrays(tmp_path: Path, fake: FakeScheduler,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    chained: list[tuple[Any, ...]] = []

    def submit_after(self: SlurmExecutor, fn: Any, args: Any, after: Any) -> str:
        chained.append((fn, tuple(args), tuple(after)))
        return "999"

    monkeypatch.setattr(SlurmExecutor, "submit_after", submit_after)
    study = load_study(write_study(tmp_path, **FAKE))
    result = submit(study, "slurm", then=print, sacct=fake.sacct)
    assert chained == [(print, (str(study.root),), ("100",))]
    assert result.chained_job == "999"
    reasons = [json.loads(line)["reason"] for line in Paths(study.root).ledger.read_text()
               .splitlines()]
    assert reasons == ["submit", "then"]
    fake.states = {f"100_{i}": "PENDING" for i in range(4)}
    again = submit(study, "slurm", then=print, sacct=fake.sacct)  # nothing new: no new chain
    assert again.chained_job is None and len(chained) == 1


def test_mixed_pack_runs_its_first_group_first(tmp_path: Path, fake: FakeScheduler,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import cluster.submission
    from cluster.planner import ArrayPlan, Plan, TaskPlan

    study = load_study(write_study(tmp_path, **FAKE))
    specs = expand(study)

    def one_pack(trials: Any, profile: Any, rates: Any = None) -> Plan:
        task = TaskPlan(tuple(trials), 1.0, 1.0)
        return Plan(profile, (ArrayPlan((task,)),), (), {}, ())

    monkeypatch.setattr(cluster.submission, "plan", one_pack)
    submit(study, "slurm", sacct=fake.sacct)
    fake.states = {"100_0": "RUNNING"}
    st = states(study_status(study, sacct=fake.sacct))
    assert [st[t.key] for t in specs] == [TrialState.RUNNING] * 3 + [TrialState.PENDING] * 3


def test_a_cancelled_job_with_a_checkpoint_is_stopped(tmp_path: Path, fake: FakeScheduler) -> None:
    """`drosweep cancel` (scancel) of a task part way: its checkpointed trials are `stopped`,
    which resume trains on, not `failed`; one cancelled before any checkpoint stays failed."""
    study = load_study(write_study(tmp_path, **FAKE))
    submit(study, "slurm", sacct=fake.sacct)
    tasks = fake.submitted[0]
    fake.states = {f"100_{i}": "CANCELLED by 0" for i in range(len(tasks))}
    trained, untrained = tasks[0].keys[0], tasks[1].keys[0]
    ckpt = Paths(study.root).checkpoint(trained)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"a checkpoint")
    st = states(study_status(study, sacct=fake.sacct))
    assert st[trained] is TrialState.STOPPED
    assert st[untrained] is TrialState.FAILED
    result = resume(study, "slurm", sacct=fake.sacct)
    assert trained in {k for pack in fake.submitted[-1] for k in pack.keys}
    assert result.array_ids
