"""The preemptible task: checkpoint() (called from a signal handler in the main thread) stops the
training thread, waits for it, and requeues a fresh task for the same pack."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import submitit

import cluster.preemptible
from cluster.preemptible import TrainTask
from jobs import TaskPack
from jobs.pack import TaskResult, TrialOutcome


class Preempted(Exception):
    pass


def test_checkpoint_stops_worker_and_requeues_same_pack(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run_task(pack: TaskPack, *, should_stop: Any) -> TaskResult:
        seen["thread"] = threading.current_thread().name
        while not should_stop():
            time.sleep(0.01)
        seen["stopped_at"] = time.monotonic()
        return TaskResult((("k", TrialOutcome.STOPPED),))

    monkeypatch.setattr(cluster.preemptible, "run_task", fake_run_task)
    pack = TaskPack(root=str(tmp_path), trials=())
    task = TrainTask(pack)
    box: dict[str, Any] = {}

    def handler(signum: int, frame: Any) -> None:  # what submitit's USR2 handler does
        box["requeue"] = task.checkpoint()
        box["returned_at"] = time.monotonic()
        raise Preempted

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        with pytest.raises(Preempted):
            task()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seen["thread"] == "drosweep-train"
    assert seen["stopped_at"] <= box["returned_at"]  # the worker had finished its checkpoint
    requeue = box["requeue"]
    assert isinstance(requeue, submitit.helpers.DelayedSubmission)
    fresh = requeue.function
    assert isinstance(fresh, TrainTask) and fresh is not task and fresh.pack == pack
    assert not fresh._stop.is_set()


def test_pickles_only_the_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster.preemptible, "run_task",
                        lambda pack, should_stop: TaskResult((("k", TrialOutcome.DONE),)))
    task = TrainTask(TaskPack(root=str(tmp_path), trials=()))
    assert task().outcomes == (("k", TrialOutcome.DONE),)
    clone = pickle.loads(pickle.dumps(task))
    assert clone.pack == task.pack and clone._worker is None
    assert set(task.__getstate__()) == {"pack"}


def test_worker_error_reaches_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(pack: TaskPack, should_stop: Any) -> TaskResult:
        raise ValueError("bad trial")

    monkeypatch.setattr(cluster.preemptible, "run_task", boom)
    with pytest.raises(ValueError, match="bad trial"):
        TrainTask(TaskPack(root=str(tmp_path), trials=()))()


def test_sigterm_stops_training_promptly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run_task(pack: TaskPack, *, should_stop: Any) -> TaskResult:
        end = time.monotonic() + 30
        while not should_stop() and time.monotonic() < end:
            time.sleep(0.01)
        return TaskResult((("k", TrialOutcome.STOPPED if should_stop() else TrialOutcome.DONE),))

    monkeypatch.setattr(cluster.preemptible, "run_task", fake_run_task)
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    start = time.monotonic()
    result = TrainTask(TaskPack(root=str(tmp_path), trials=()))()
    assert result.stopped and time.monotonic() - start < 5
    assert signal.getsignal(signal.SIGTERM) == before  # restored
