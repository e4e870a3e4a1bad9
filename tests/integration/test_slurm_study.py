"""A smoke-like study on the real local SLURM: arrays, status, failures, resume."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from slurm_helpers import job_state, run, wait_for, wait_settled

import cluster.submission
from cluster import TrialState, resume, study_status, submit
from cluster.ledger import read as read_ledger
from drosweep.cli import main
from jobs import Paths, Study, expand, load_study, read_done, read_failed

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slurm


def test_smoke_like_study_completes_and_status_agrees(make_study: Callable[..., Study],
                                                      capsys: Any) -> None:
    # 2 methods x 2 radii x 3 trials (regular once per trial), one fake GPU per task, and a
    # MaxArraySize of 4 so the tasks go out as two arrays, each indexed from 0
    study = make_study(methods=("regular", "robust"), radii=(0.02, 0.05), trials=3, epochs=2,
                       gpus=1, max_pack=2, max_array_size=4,
                       training="n_base = 16\ntemp_steps = 5")
    start = time.monotonic()
    result = submit(study, "slurm", progress=False)
    assert time.monotonic() - start < 30  # returns without waiting for the jobs
    assert len(result.plan.trials) == 9 and len(result.plan.tasks) == 6
    assert len(result.array_ids) == 2
    assert [j.split("_")[1] for j in result.job_ids] == ["0", "1", "2", "3", "0", "1"]
    first = study_status(study).counts
    assert first[TrialState.MISSING] == 0 and first[TrialState.FAILED] == 0

    status = wait_settled(study, timeout=240)
    wall = time.monotonic() - start
    assert status.counts[TrialState.DONE] == 9, status.to_json()
    print(f"smoke-like study on SLURM: {wall:.1f}s")
    # the scheduler agrees: every task COMPLETED (a task ends a moment after its markers)
    wait_for(lambda: {job_state(j) for j in result.job_ids} == {"COMPLETED"}, 60, 1.0,
             "the tasks to end")
    # the CLI says the same
    capsys.readouterr()
    assert main(["status", str(study.source), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts == {"done": 9, "running": 0, "pending": 0, "failed": 0, "missing": 0}
    paths = Paths(study.root)
    for trial in expand(study):
        marker = read_done(paths, trial)
        assert marker is not None and marker.slurm_job_id in result.job_ids
        assert paths.model(trial).is_file()
    assert (paths.study_file.read_text() == study.text)
    # nothing left to do
    again = resume(study, "slurm", progress=False)
    assert again.plan.trials == () and again.already_done == 9


def test_shipped_smoke_study_on_slurm(avila_data_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROSWEEP_DATA_DIR", str(avila_data_dir))
    name = f"it-smoke-{tmp_path.name}"[:60]  # its own job name, to cancel leftovers
    text = (REPO / "studies" / "smoke.toml").read_text().replace('name = "smoke"',
                                                                f'name = "{name}"')
    (tmp_path / "smoke.toml").write_text(text)
    study = load_study(tmp_path / "smoke.toml", root=tmp_path / "smoke")
    start = time.monotonic()
    result = submit(study, "slurm", progress=False)
    try:
        status = wait_settled(study, timeout=600)
        print(f"studies/smoke.toml on SLURM: {time.monotonic() - start:.1f}s")
        assert status.counts[TrialState.DONE] == len(expand(study)) == 9, status.to_json()
        wait_for(lambda: {job_state(j) for j in result.job_ids} == {"COMPLETED"}, 60, 1.0,
                 "the tasks to end")
    finally:
        run(["scancel", "--name", f"drosweep-{study.name}"])


def test_failed_task_is_reported_and_resume_resubmits_only_it(
        make_study: Callable[..., Study], monkeypatch: pytest.MonkeyPatch) -> None:
    study = make_study(methods=("regular",), trials=3, epochs=2)
    specs = expand(study)
    bad_key = specs[1].key
    real_expand = cluster.submission.expand

    def broken_expand(s: Study) -> list[Any]:  # one spec made invalid on purpose
        return [dataclasses.replace(t, train_spec=dataclasses.replace(t.train_spec, seed=-1))
                if t.key == bad_key else t for t in real_expand(s)]

    monkeypatch.setattr(cluster.submission, "expand", broken_expand)
    first = submit(study, "slurm", progress=False)
    status = wait_settled(study, timeout=120)
    states = {t.trial.key: t for t in status.trials}
    assert states[bad_key].state is TrialState.FAILED
    assert "seed" in states[bad_key].detail
    assert all(t.state is TrialState.DONE for k, t in states.items() if k != bad_key)
    bad_job = states[bad_key].job_id
    assert bad_job in first.job_ids and job_state(bad_job) == "FAILED"
    assert read_failed(Paths(study.root), bad_key) is not None

    monkeypatch.setattr(cluster.submission, "expand", real_expand)
    again = resume(study, "slurm", progress=False)
    assert [t.key for t in again.plan.trials] == [bad_key]
    twice = resume(study, "slurm", progress=False)  # the retry is queued: nothing more
    assert twice.plan.trials == ()
    final = wait_settled(study, timeout=120)
    assert final.counts[TrialState.DONE] == 3
    assert read_failed(Paths(study.root), bad_key) is None  # cleared by the success
    subs = read_ledger(Paths(study.root).ledger)
    assert [s.reason for s in subs] == ["submit", "resume"]
    assert [k for t in subs[1].tasks for k in t.keys] == [bad_key]


def test_sbatch_refusal_is_one_clear_error(make_study: Callable[..., Study],
                                           capsys: Any) -> None:
    study = make_study(gpus=1)
    text = study.source.read_text().replace("gpus_per_node = 2", "gpus_per_node = 8") \
        .replace("gpus_per_task = 1", "gpus_per_task = 8")
    Path(study.source).write_text(text)
    assert main(["submit", str(study.source)]) == 2
    err = capsys.readouterr().err.strip()  # the cluster was read: refused before sbatch
    assert "no node of partition" in err and "8 GPU(s)" in err and "\n" not in err
    assert not study.root.exists()  # refused before anything was submitted: no trace
    # what only sbatch knows (a node feature) is sbatch's refusal, in one line
    text = study.source.read_text().replace("gpus_per_task = 8", "gpus_per_task = 1") \
        .replace("[cluster]\n", '[cluster]\nconstraint = "no_such_feature"\n')
    Path(study.source).write_text(text)
    assert main(["submit", str(study.source)]) == 2
    err = capsys.readouterr().err.strip()
    assert "sbatch refused the array" in err and "feature" in err and "\n" not in err
    assert not study.root.exists()
