"""Heartbeats: which trials a task is training right now, on which host and process.

A task refreshes `heartbeat.json` in the folder of each trial of its pack every
`HEARTBEAT_EVERY_S` and removes it when the trial ends or the task exits. A heartbeat is live
while it is fresh and, when it was written on this host, its process is alive: so `status` in
another shell shows a local run's trials as running, and `resume` never plans them again, while a
task killed with SIGKILL (no cleanup) stops counting at once on its host and after
`HEARTBEAT_STALE_S` elsewhere. A pid alone is not proof: once the task is dead the system may
give its pid to another process, so the heartbeat also records when its process started, and a
process under that pid that started at another time is not the task.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from types import TracebackType

from common.atomic import atomic_write_json
from jobs.markers import slurm_job_id
from jobs.paths import Paths

HEARTBEAT_EVERY_S = 20.0
HEARTBEAT_STALE_S = 90.0
HEARTBEAT_FORMAT = 1


class BeatState(enum.StrEnum):
    TRAINING = "training"   # its batch is training now
    WAITING = "waiting"     # later in the pack
    QUEUED = "queued"       # in a local run's queue, its task not started (written by the runner)


@dataclass(frozen=True)
class Beat:
    key: str
    state: BeatState
    host: str
    pid: int
    slurm_job_id: str | None
    started_at: float       # epoch seconds: the task started
    updated_at: float
    format: int = HEARTBEAT_FORMAT
    pid_start: str | None = None  # `process_start(pid)` when written (None: unknown)

    def live(self, now: float | None = None, host: str | None = None) -> bool:
        moment = time.time() if now is None else now
        if moment - self.updated_at > HEARTBEAT_STALE_S:
            return False
        if self.host != (host or socket.gethostname()):
            return True  # another host: freshness is all there is to check
        if not pid_alive(self.pid):
            return False
        if self.pid_start is None:
            return True
        started = process_start(self.pid)
        return started is None or started == self.pid_start  # else: the pid was reused


def process_start(pid: int) -> str | None:
    """When the process started, as a token that differs between two processes that held the
    same pid: field 22 of /proc/<pid>/stat (clock ticks since boot) where /proc exists, else the
    start time `ps` prints (to the second); None when neither can tell (no such process)."""
    if os.path.isdir("/proc/self"):
        return _proc_start(pid)
    return _ps_start(pid)


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # its name (field 2) may hold spaces and ")"
    return f"proc:{fields[19]}" if len(fields) > 19 else None  # fields[0] is field 3


def _ps_start(pid: int) -> str | None:
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return f"ps:{' '.join(out.split())}" if out.strip() else None


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_beat(paths: Paths, key: str) -> Beat | None:
    """The trial's heartbeat (live or not), or None when absent or unreadable."""
    try:
        data = json.loads(paths.heartbeat(key).read_text(encoding="utf-8"))
        data["state"] = BeatState(data["state"])
        return Beat(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


class Heartbeat:
    """Context manager run by a task around its pack: a daemon thread refreshes the files."""

    def __init__(self, paths: Paths, keys: Iterable[str],
                 every_s: float = HEARTBEAT_EVERY_S, state: BeatState = BeatState.WAITING) -> None:
        self.paths, self.every_s = paths, every_s
        self._state = dict.fromkeys(keys, state)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._host, self._pid, self._job = socket.gethostname(), os.getpid(), slurm_job_id()
        self._pid_start = process_start(self._pid)
        self._started = time.time()

    def __enter__(self) -> Heartbeat:
        self._write_all()
        self._thread = threading.Thread(target=self._loop, name="drosweep-heartbeat",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            keys, self._state = list(self._state), {}
        for key in keys:
            self._remove(key)

    def training(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                if key in self._state:
                    self._state[key] = BeatState.TRAINING
        self._write_all()

    def ended(self, keys: Iterable[str]) -> None:
        """These trials are done or failed: their heartbeats go now, not at the task's end."""
        with self._lock:
            gone = [k for k in keys if self._state.pop(k, None) is not None]
        for key in gone:
            self._remove(key)

    def release(self, keys: Iterable[str]) -> None:
        """Stop refreshing these (another process takes them over) but leave their files."""
        with self._lock:
            for key in keys:
                self._state.pop(key, None)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._write_all()

    def _write_all(self) -> None:
        with self._lock:
            items = list(self._state.items())
            now = time.time()
            for key, state in items:
                with contextlib.suppress(OSError):  # advisory: never fail the training
                    atomic_write_json(self.paths.heartbeat(key), asdict(Beat(
                        key, state, self._host, self._pid, self._job, self._started, now,
                        pid_start=self._pid_start)))

    def _remove(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self.paths.heartbeat(key).unlink()
