"""Blocking executors (local, debug): the submitted packs run on this machine, `parallelism` at a
time, with a progress bar; Ctrl-C or SIGTERM stop them all with a checkpoint.

`drosweep cancel` of some trials stops only those: a running task is sent SIGTERM (it checkpoints
and ends; the trials it packs with them stop too), and trials still in the queue are asked for
in a small request file (`Paths.cancel_requests`) that the runner reads between polls and drops
from its queue. The other trials train on; the run then ends with the one stopped line.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.concurrency import ArrayOptions
from cluster.executors.base import Executor
from cluster.executors.submitit_api import job_process
from common.atomic import atomic_write_json
from jobs.commands import study_command
from jobs.grid import TrialSpec
from jobs.heartbeat import BeatState, Heartbeat
from jobs.markers import read_done, read_failed
from jobs.pack import TaskPack, TaskResult
from jobs.paths import Paths
from jobs.study import ClusterProfile, Study
from trainers.progress import read_progress
from trainers.stop import stop_on_signals

if TYPE_CHECKING:
    import submitit

    from cluster.executors.slurm.info import SlurmInfo

STOP_TIMEOUT_S = 300.0   # a stopped task finishes its step and checkpoints within this


def local_device_model(device: str, threads: int | None = None) -> str:
    """The device model of this machine for `device` (auto, cuda or cpu), with the torch threads
    its tasks train with (`cpus_per_task`; None: torch's default)."""
    from trainers.device import cpu_threads, device_model, resolve_device  # torch when needed

    with cpu_threads(threads):
        return device_model(resolve_device(device))


class BlockingExecutor(Executor):
    """Runs the submitted packs on this machine, `parallelism` at a time, with a progress bar."""

    blocking = True
    parallelism: int = 1

    def device_model(self, profile: ClusterProfile, info: SlurmInfo | None,
                     device: str | None = None) -> str | None:
        """This machine's device model."""
        del info
        return local_device_model(device or profile.device, profile.cpus_per_task)

    def __init__(self, study: Study, paths: Paths) -> None:
        super().__init__(study, paths)
        self._queue: list[tuple[str, TaskPack]] = []
        self._after: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    @abc.abstractmethod
    def submitit_executor(self, job_id: str) -> submitit.Executor:
        """The submitit executor that runs the task `job_id` (its logs: `logs/<name>/<job_id>`)."""

    def submit(self, packs: Sequence[TaskPack], options: ArrayOptions | None = None) -> list[str]:
        del options
        label = f"{self.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        ids = [f"{label}_{i}" for i in range(len(packs))]
        self._queue.extend(zip(ids, packs, strict=True))
        return ids

    def submit_after(self, fn: Callable[..., Any], args: Sequence[Any],
                     after: Sequence[str]) -> str | None:
        """Kept until `finish` has run every submitted array (`after` are among them)."""
        del after
        self._after.append((fn, tuple(args)))
        return None

    def finish(self, progress: bool = True) -> list[str]:
        """Run the queue, then what was chained after it (`submit_after`). Ctrl-C or SIGTERM stop
        every running task with a checkpoint; `drosweep cancel` stops only the tasks of the
        trials it names and drops queued ones, while the rest train on. Either way the run then
        raises `RunStopped` (one line) and nothing chained runs."""
        from tqdm import tqdm

        from cluster.preemptible import TrainTask

        trials = [t for _, pack in self._queue for t in pack.trials]
        packs = dict(self._queue)
        waiting = list(self._queue)
        running: list[tuple[str, Any]] = []
        errors: list[str] = []
        bar = tqdm(total=len(trials), unit="trial", disable=not progress, desc=self.study.name,
                   dynamic_ncols=True)
        on_sigterm = contextlib.ExitStack()  # SIGTERM: cancel the tasks here, do not orphan them
        on_sigterm.enter_context(stop_on_signals(_exit, (signal.SIGTERM,)))
        stopped = False
        cancelled: set[str] = set()  # trials `drosweep cancel` stopped or took off the queue
        requests = CancelRequests(self.paths, since=time.time())
        # queued trials are pending; `cancel` asks this runner (not a task) to drop them
        queued = Heartbeat(self.paths, [t.key for t in trials], state=BeatState.QUEUED)
        try:
            queued.__enter__()
            while waiting or running:
                asked = requests.poll()
                if asked:
                    waiting, dropped = _without(waiting, asked)
                    queued.ended(dropped)
                    cancelled.update(dropped)
                    _stop([(j, job) for j, job in running if asked & set(packs[j].keys)])
                while waiting and len(running) < self.parallelism:
                    job_id, pack = waiting.pop(0)
                    queued.release(pack.keys)  # the task's own heartbeat takes over
                    with _terminal_interrupts_ignored():
                        job = self.submitit_executor(job_id).submit(TrainTask(pack))
                    running.append((job_id, job))
                for job_id, job in list(running):
                    try:
                        finished = job.done()
                    except Exception as exc:  # debug jobs raise the task's error here
                        running.remove((job_id, job))
                        errors.extend(_failure_lines(job_id, exc, self.paths, packs[job_id]))
                        continue
                    if finished:
                        running.remove((job_id, job))
                        errors.extend(_error_line(job_id, job, self.paths, packs[job_id]))
                        if _was_stopped(job):  # stopped from outside: the others go on
                            cancelled.update(t.key for t in packs[job_id].trials
                                             if read_done(self.paths, t, retries=0) is None)
                done = sum(read_done(self.paths, t, retries=0) is not None for t in trials)
                bar.update(done - bar.n)
                bar.set_postfix(failed=len(errors), refresh=False)
                if running:
                    time.sleep(0.5)
        except (KeyboardInterrupt, SystemExit):
            stopped = True
            _stop(running)
            _wait(running)
        except BaseException:
            _stop(running)
            raise
        finally:
            queued.__exit__(None, None, None)
            bar.close()
            on_sigterm.close()
        self._queue.clear()
        after, self._after = self._after, []
        if stopped or cancelled:
            raise RunStopped(stopped_line(self.study, self.paths, trials))
        for fn, args in after:
            fn(*args)
        return errors


class CancelRequests:
    """The trials `drosweep cancel` asked this run to drop (`Paths.cancel_requests`): those asked
    since the run started, each once; the file is read again only when it changes."""

    def __init__(self, paths: Paths, since: float) -> None:
        self.path, self.since = paths.cancel_requests, since
        self._seen: set[str] = set()
        self._mtime: int | None = None

    def poll(self) -> set[str]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return set()
        if mtime == self._mtime:
            return set()
        self._mtime = mtime
        new = {key for key, at in read_cancel_requests(self.path).items()
               if at >= self.since} - self._seen
        self._seen |= new
        return new


def read_cancel_requests(path: Path) -> dict[str, float]:
    """Key -> when its cancel was asked (epoch seconds); {} when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data["requests"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def request_cancel(paths: Paths, keys: Sequence[str]) -> None:
    """Ask the local run whose queue holds `keys` to drop them (see CancelRequests)."""
    requests = read_cancel_requests(paths.cancel_requests)
    now = time.time()
    requests.update(dict.fromkeys(keys, now))
    atomic_write_json(paths.cancel_requests, {"requests": requests})


def _without(waiting: Sequence[tuple[str, TaskPack]], keys: set[str]
             ) -> tuple[list[tuple[str, TaskPack]], list[str]]:
    """The queue without the trials `keys` (a pack left empty leaves it) and the keys dropped."""
    kept: list[tuple[str, TaskPack]] = []
    dropped: list[str] = []
    for job_id, pack in waiting:
        mine = [t for t in pack.trials if t.key in keys]
        dropped.extend(t.key for t in mine)
        rest = tuple(t for t in pack.trials if t.key not in keys)
        if rest:
            kept.append((job_id, dataclasses.replace(pack, trials=rest) if mine else pack))
    return kept, dropped


class RunStopped(KeyboardInterrupt):
    """A blocking run was stopped (Ctrl-C, SIGTERM, `drosweep cancel`); its message is the one
    line that says what was checkpointed and how to go on."""


def stopped_line(study: Study, paths: Paths, trials: Sequence[TrialSpec]) -> str:
    done = sum(read_done(paths, t, retries=0) is not None for t in trials)
    started = [p for t in trials if read_done(paths, t, retries=0) is None
               and (p := read_progress(paths.progress(t))) is not None and p.step > 0]
    steps = f" ({sum(p.step for p in started)} steps in all)" if started else ""
    return (f"stopped: {done} of {len(trials)} trial(s) done, {len(started)} checkpointed"
            f"{steps}, {len(trials) - done - len(started)} not started; go on with "
            f"`{study_command('resume', study, '--executor', 'local')}`")


@contextlib.contextmanager
def _terminal_interrupts_ignored() -> Iterator[None]:
    """Task processes started here inherit SIGINT ignored, so Ctrl-C reaches only this runner
    (and the tasks through their own handler), never as a traceback from submitit's process that
    watches each task; the runner stops them with SIGTERM, which they checkpoint on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _was_stopped(job: Any) -> bool:
    try:
        result = job.result()
    except Exception:
        return False
    return isinstance(result, TaskResult) and result.stopped


def _stop(running: Sequence[tuple[str, Any]]) -> None:
    """SIGTERM to each local task (submitit's watcher forwards it): they checkpoint and end."""
    for _, job in running:
        process = job_process(job)
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                process.send_signal(signal.SIGTERM)


def _wait(running: Sequence[tuple[str, Any]], timeout_s: float = STOP_TIMEOUT_S) -> None:
    end = time.monotonic() + timeout_s
    for _, job in running:
        process = job_process(job)
        if process is None:
            continue
        try:
            process.wait(timeout=max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:  # its watcher ignores SIGINT (see above)
            process.kill()


def _exit(sig: signal.Signals) -> None:
    """SIGTERM becomes SystemExit while tasks run here, so they are cancelled, not orphaned."""
    raise SystemExit(128 + sig)


def _error_line(job_id: str, job: Any, paths: Paths, pack: TaskPack) -> list[str]:
    """A failed task: each failed trial's own error (its FAILED marker names the trial and the
    file), else one line for the task: its trials, how it ended, where its log is."""
    try:
        exc = job.exception()
    except Exception as err:  # the job died without a result (killed)
        exc = err
    return [] if exc is None else _failure_lines(job_id, exc, paths, pack, job)


def _failure_lines(job_id: str, exc: BaseException, paths: Paths, pack: TaskPack,
                   job: Any = None) -> list[str]:
    markers = [(t.key, read_failed(paths, t, retries=0)) for t in pack.trials]
    lines = [f"{key}: {m.error}" for key, m in markers if m is not None]
    return lines or [_describe(job_id, exc, paths, pack, job)]


def _describe(job_id: str, exc: BaseException, paths: Paths, pack: TaskPack,
              job: Any = None) -> str:
    """`<keys>: task <id> <how it ended>; log <file>`: the exit status of a task killed without
    a result, never submitit's text about the pickle it could not read."""
    keys = [t.key for t in pack.trials if read_done(paths, t, retries=0) is None] \
        or list(pack.keys)
    from submitit.core.utils import UncompletedJobError

    process = job_process(job) if job is not None else None
    code = process.poll() if process is not None else None
    if code is not None and code < 0:
        how = f"was killed by {_signal_name(-code)} before it finished"
    elif isinstance(exc, UncompletedJobError):  # its process ended with neither result nor error
        how = "was killed before it finished (no result and no error: SIGKILL, out of memory?)"
    elif code:
        how = f"exited with code {code} without a result"
    else:
        text = str(exc).strip().splitlines()
        how = f"ended with {type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")
    log = _log_file(job)
    kept = "; its checkpoints are kept, `drosweep resume` trains on"
    return (f"{', '.join(keys)}: task {job_id} {how}{kept}"
            + (f"; log {log}" if log is not None else ""))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _log_file(job: Any) -> Path | None:
    """The task's stderr file (submitit's job paths), None where there is none."""
    try:
        path = job.paths.stderr
    except Exception:
        return None
    return Path(path) if path is not None else None
