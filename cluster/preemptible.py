"""The callable submitit runs in every task, on every executor: `jobs.run_task` made preemptible.

On preemption or an approaching time limit SLURM sends USR2; submitit's handler calls
`checkpoint()` in the main thread, then requeues the job and exits. Training therefore runs in a
worker thread: `checkpoint()` sets the stop flag the trainer polls after every optimizer step,
waits for the worker (which writes the trial's checkpoint and returns), and hands submitit a
fresh task for the same pack. The requeued task resumes from the checkpoints on disk; the
pickled payload carries only the pack, never training state.

SIGTERM (scancel, `drosweep cancel`, or the end of a preemption grace time) and SIGINT (Ctrl-C
on a local run) also stop the training at the next step with a checkpoint, instead of training on
until SIGKILL while a resubmitted task may already be starting on the same trial; the task then
returns a stopped result, without a traceback.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import submitit

from common.determinism import pin_thread_env
from jobs.pack import TaskPack, TaskResult, run_task
from trainers.stop import stop_on_signals


class TrainTask(submitit.helpers.Checkpointable):
    def __init__(self, pack: TaskPack) -> None:
        self._setup(pack)

    def _setup(self, pack: TaskPack) -> None:
        self.pack = pack
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"pack": self.pack}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["pack"])

    def __call__(self) -> TaskResult:
        pin_thread_env()  # the task's process: before its trainer imports torch
        box: dict[str, Any] = {}
        # its stdout is the task's log: progress lines there, unless a bar is drawn (debug)
        pack = dataclasses.replace(self.pack, lines=not self.pack.progress)

        def work() -> None:
            try:
                box["result"] = run_task(pack, should_stop=self._stop.is_set)
            except BaseException as exc:  # handed to the main thread below
                box["error"] = exc

        with stop_on_signals(lambda _: self._stop.set()):
            self._worker = threading.Thread(target=work, name="drosweep-train")
            self._worker.start()
            while self._worker.is_alive():  # a timed join lets the main thread take signals
                self._worker.join(timeout=0.5)
        if "error" in box:
            raise box["error"]
        result: TaskResult = box["result"]
        return result

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        del args, kwargs
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
        return submitit.helpers.DelayedSubmission(TrainTask(self.pack))
