"""The submit lock of a study root, and who holds it.

`submit` and `resume` hold `Paths.lock` while they select and submit, so two of them never
double-submit. The holder records itself in `Paths.lock_holder` (atomically, as it takes the
lock; removed before it lets go), so a second call says at once whom it waits for instead of
waiting silently. A record is only believed while its process lives: one left by a holder that
died (the lock itself dies with its process) is named as such, never as the holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import filelock

from cluster.errors import ClusterError
from common.atomic import atomic_write_text
from jobs.heartbeat import pid_alive, process_start
from jobs.paths import Paths


@dataclass(frozen=True)
class Holder:
    """The process that took the lock: where, which, doing what, since when (UTC)."""

    host: str
    pid: int
    command: str
    since: str
    pid_start: str | None = None     # tells a reused pid from the holder

    @classmethod
    def me(cls) -> Holder:
        words = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
        return cls(host=socket.gethostname(), pid=os.getpid(), command=shlex.join(words)[:300],
                   since=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                   pid_start=process_start(os.getpid()))

    def ended(self) -> bool:
        """True when the record's process is known to have ended (on this host only)."""
        if self.host != socket.gethostname():
            return False
        if not pid_alive(self.pid):
            return True
        started = process_start(self.pid)
        return self.pid_start is not None and started is not None and started != self.pid_start

    def describe(self) -> str:
        what = f" ({self.command})" if self.command else ""
        return f"held since {self.since} by pid {self.pid} on host {self.host}{what}"


def read_holder(paths: Paths) -> Holder | None:
    """The recorded holder, None when there is none or it cannot be read."""
    try:
        data = json.loads(paths.lock_holder.read_text(encoding="utf-8"))
        return Holder(host=str(data["host"]), pid=int(data["pid"]), command=str(data["command"]),
                      since=str(data["since"]), pid_start=data.get("pid_start"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def holder_line(paths: Paths) -> str:
    """Who holds the root's submit lock, in words, for a caller that could not take it."""
    holder = read_holder(paths)
    if holder is None:
        return "held by another process (it recorded no holder)"
    if holder.ended():
        return (f"held by another process (the last recorded holder, pid {holder.pid} on host "
                f"{holder.host} since {holder.since}, has ended)")
    return holder.describe()


def _say(line: str) -> None:
    print(f"drosweep: {line}", file=sys.stderr, flush=True)


def acquire(paths: Paths, timeout_s: float,
            say: Callable[[str], None] = _say) -> filelock.FileLock:
    """Take the root's submit lock: at once, or after one line naming who holds it, within
    `timeout_s`; then record this process as the holder. ClusterError when it stays held."""
    lock = filelock.FileLock(str(paths.lock), timeout=timeout_s)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        say(f"the submit lock {paths.lock} is {holder_line(paths)}; waiting up to "
            f"{timeout_s:g} s")
        try:
            lock.acquire()
        except filelock.Timeout:
            raise ClusterError(f"another submit/resume holds {paths.lock} after {timeout_s:g} s "
                               f"of waiting ({holder_line(paths)}); try again when it has "
                               f"finished") from None
    try:
        atomic_write_text(paths.lock_holder, json.dumps(asdict(Holder.me()), sort_keys=True))
    except BaseException:
        lock.release()
        raise
    return lock


def release(paths: Paths, lock: filelock.FileLock) -> None:
    """Forget the holder record, then let go of the lock (a record never outlives its hold,
    except by a crash, which `holder_line` recognizes)."""
    with contextlib.suppress(OSError):
        paths.lock_holder.unlink()
    lock.release()
