"""Markers (atomic, tolerant readers) and the task entry point (skip DONE, mark failures)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import trainers.loop
from jobs import (
    Paths,
    TaskFailed,
    TaskPack,
    TrialOutcome,
    expand,
    parse_study,
    read_done,
    read_failed,
    run_pack,
    run_task,
    write_done,
    write_failed,
)
from jobs.markers import read_done_at
from studies import study_text
from trainers.loop import TrainResult

MARKERS: dict[str, Any] = {"name": "m", "methods": ["regular", "robust"], "radii": [0.05],
                           "trials": 2, "training": {"epochs": 1, "max_steps": 3}}


def trials(tmp_path: Path):
    study = parse_study(study_text(tmp_path, **MARKERS), Path("m.toml"))
    return study, expand(study)


def test_done_marker_atomic_and_clears_failed(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, specs = trials(tmp_path)
    paths = Paths(tmp_path)
    t = specs[0]
    assert read_done(paths, t) is None and read_failed(paths, t) is None
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "42")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    f = write_failed(paths, t, RuntimeError("first try"))
    assert f.slurm_job_id == "42_3" and "RuntimeError: first try" in f.error
    assert "RuntimeError" in (read_failed(paths, t) or f).traceback
    d = write_done(paths, t, model_sha256="ab" * 32, steps=5, epochs=1, wall_s=2.5,
                   final_loss=0.1, resumed_from=0)
    assert read_done(paths, t) == d and d.spec == t.train_spec.to_dict() and d.host
    assert not paths.failed(t).exists()
    assert sorted(p.name for p in paths.trial_dir(t).iterdir()) == ["DONE.json"]  # no temp


def test_unreadable_marker_is_absent(tmp_path: Path) -> None:
    _, specs = trials(tmp_path)
    paths = Paths(tmp_path)
    paths.done(specs[0]).parent.mkdir(parents=True)
    paths.done(specs[0]).write_text('{"key": "half')
    assert read_done(paths, specs[0], retries=1, delay_s=0.01) is None
    paths.done(specs[0]).write_text('{"unexpected": 1}')
    assert read_done(paths, specs[0], retries=0) is None


def fake_train_pack(calls: list[list[str]], fail_seed: int | None = None):
    def train_pack(specs: Any, paths: Any, **kw: Any) -> list[TrainResult]:
        calls.append([str(p.model) for p in paths])
        if fail_seed is not None and any(s.seed == fail_seed for s in specs):
            raise RuntimeError("diverged")
        out = []
        for p in paths:
            p.model.parent.mkdir(parents=True, exist_ok=True)
            p.model.write_bytes(b"weights")
            out.append(TrainResult(3, 1, 0.1, 0, 0.5, True, None,
                                   kept={"mean": 2.5, "max": 7.0, "steps": 3}))
        return out
    return train_pack


def test_run_pack_batches_skips_done_and_marks(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, specs = trials(tmp_path)
    calls: list[list[str]] = []
    monkeypatch.setattr(trainers.loop, "train_pack", fake_train_pack(calls))
    pack = TaskPack(root=str(tmp_path), trials=tuple(specs), device="cpu")
    result = run_task(pack)
    assert [o for _, o in result.outcomes] == [TrialOutcome.DONE] * 4
    assert len(calls) == 2  # one batch per (method, radius)
    paths = Paths(tmp_path)
    for t in specs:
        marker = read_done(paths, t)
        assert marker is not None and marker.steps == 3
        assert marker.kept_samples == {"mean": 2.5, "max": 7.0, "steps": 3}
        assert json.loads(paths.spec_file(t).read_text())["key"] == t.key
    again = run_pack(pack)
    assert [o for _, o in again.outcomes] == [TrialOutcome.SKIPPED] * 4 and len(calls) == 2


def test_done_marker_records_device_model_and_pack(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The pack a trial was timed in is the trials that resumed from its step with it."""
    from trainers.device import device_model, resolve_device

    study = parse_study(study_text(tmp_path, **{**MARKERS, "trials": 3}), Path("m.toml"))
    specs = [t for t in expand(study) if t.method.value == "robust"]

    def train_pack(specs: Any, paths: Any, **kw: Any) -> list[TrainResult]:
        for p in paths:
            p.model.parent.mkdir(parents=True, exist_ok=True)
            p.model.write_bytes(b"weights")
        # two trials resumed together from step 1, one trained alone from step 0
        return [TrainResult(3, 1, 0.1, 1, 0.5, True, None),
                TrainResult(3, 1, 0.1, 1, 0.5, True, None),
                TrainResult(3, 1, 0.2, 0, 0.5, True, None)]

    monkeypatch.setattr(trainers.loop, "train_pack", train_pack)
    run_task(TaskPack(root=str(tmp_path), trials=tuple(specs), device="cpu"))
    markers = [read_done(Paths(tmp_path), t) for t in specs]
    assert [m.pack for m in markers if m] == [2, 2, 1]
    expected = device_model(resolve_device("cpu"))
    assert "thread" in expected
    assert all(m is not None and m.device_model == expected for m in markers)


def test_old_done_marker_without_device_model_reads(tmp_path: Path) -> None:
    _, specs = trials(tmp_path)
    paths = Paths(tmp_path)
    d = write_done(paths, specs[0], model_sha256="ab" * 32, steps=5, epochs=1, wall_s=2.5,
                   final_loss=0.1, resumed_from=0)
    data = json.loads(paths.done(specs[0]).read_text())
    del data["device_model"], data["pack"]
    paths.done(specs[0]).write_text(json.dumps(data))
    old = read_done(paths, specs[0])
    assert old == d and old.device_model is None and old.pack is None
    assert paths.done_files() == {specs[0].key: paths.done(specs[0])}
    assert read_done_at(paths.done(specs[0])) == d and read_done_at(paths.done(specs[1])) is None


def test_failures_are_marked_and_raised_at_the_end(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, specs = trials(tmp_path)
    calls: list[list[str]] = []
    robust = [t for t in specs if t.method.value == "robust"]
    monkeypatch.setattr(trainers.loop, "train_pack",
                        fake_train_pack(calls, fail_seed=robust[0].train_spec.seed))
    broken = dataclasses.replace(specs[0], train_spec=dataclasses.replace(
        specs[0].train_spec, radius=-1.0))
    pack = TaskPack(root=str(tmp_path), trials=(broken, *specs[1:]), device="cpu")
    with pytest.raises(TaskFailed, match="3 of 4"):
        run_task(pack)
    paths = Paths(tmp_path)
    assert "radius" in (read_failed(paths, broken) or pytest.fail()).error
    assert read_done(paths, specs[1]) is not None  # the other regular trial trained
    for t in robust:
        assert "diverged" in (read_failed(paths, t) or pytest.fail()).error
    outcomes = dict(run_pack(pack).outcomes)
    assert outcomes[specs[1].key] is TrialOutcome.SKIPPED


def test_stop_before_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, specs = trials(tmp_path)
    calls: list[list[str]] = []
    monkeypatch.setattr(trainers.loop, "train_pack", fake_train_pack(calls))
    result = run_pack(TaskPack(str(tmp_path), tuple(specs)), should_stop=lambda: True)
    assert result.stopped and not calls


def test_reraise_for_debugging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, specs = trials(tmp_path)
    monkeypatch.setattr(trainers.loop, "train_pack",
                        fake_train_pack([], fail_seed=specs[0].train_spec.seed))
    with pytest.raises(RuntimeError, match="diverged"):
        run_pack(TaskPack(str(tmp_path), (specs[0],), reraise=True))
    assert read_failed(Paths(tmp_path), specs[0]) is not None


def test_real_training_on_synthetic_data(tmp_path: Path) -> None:
    _, specs = trials(tmp_path)
    regular = [t for t in specs if t.method.value == "regular"]
    result = run_task(TaskPack(str(tmp_path), tuple(regular), device="cpu"))
    assert [o for _, o in result.outcomes] == [TrialOutcome.DONE] * 2
    paths = Paths(tmp_path)
    for t in regular:
        marker = read_done(paths, t)
        assert marker is not None and marker.steps == 3
        from common.atomic import sha256_file
        assert marker.model_sha256 == sha256_file(paths.model(t))
        assert marker.precision == "fp32"  # the pinned matmul precision it trained with


def test_a_diverged_training_is_failed_not_done(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial that finishes with a NaN loss (e.g. lr 1e30) gets a FAILED marker that says why,
    and no DONE marker: status and resume never count its model as a result."""
    from jobs import read_failed

    _, specs = trials(tmp_path)

    def train_pack(specs_: Any, paths: Any, **kw: Any) -> list[TrainResult]:
        for p in paths:
            p.model.parent.mkdir(parents=True, exist_ok=True)
            p.model.write_bytes(b"weights")
        return [TrainResult(3, 1, 0.1, 0, float("nan"), True, None) for _ in paths]

    monkeypatch.setattr(trainers.loop, "train_pack", train_pack)
    result = run_pack(TaskPack(root=str(tmp_path), trials=tuple(specs), device="cpu"))
    assert [o for _, o in result.outcomes] == [TrialOutcome.FAILED] * 4
    paths = Paths(tmp_path)
    for t in specs:
        assert read_done(paths, t) is None
        failed = read_failed(paths, t)
        assert failed is not None
        assert failed.error.startswith("TrainingDiverged: training diverged: final loss nan")
