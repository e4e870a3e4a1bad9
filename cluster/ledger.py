"""The submission ledger: one JSON line per submitted array, appended, never rewritten.

It is what maps a trial back to the scheduler: array id, and for each task its job id and keys.
Writers hold the study's submit lock; each record is one `write` of one line followed by fsync,
and a reader skips a torn last line (a crash mid-append loses that record, never earlier ones).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster.errors import ClusterError
from common.atomic import StorageError

LEDGER_FORMAT = 1


@dataclass(frozen=True)
class TaskRecord:
    index: int
    job_id: str                  # `<array>_<index>`, a plain job id, or a local job id
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Submission:
    submission_id: str           # one `submit`/`resume` call; its arrays share it
    executor: str                # slurm | local | debug
    array_id: str                # scheduler array (or job) id; for local/debug a label
    submitted_at: str
    reason: str                  # submit | resume
    fingerprint: str
    tasks: tuple[TaskRecord, ...]

    @property
    def submitted_epoch(self) -> float:
        return datetime.fromisoformat(self.submitted_at).timestamp()

    def to_json(self) -> str:
        return json.dumps({
            "format": LEDGER_FORMAT, "submission_id": self.submission_id,
            "executor": self.executor, "array_id": self.array_id,
            "submitted_at": self.submitted_at, "reason": self.reason,
            "fingerprint": self.fingerprint,
            "tasks": [{"index": t.index, "job_id": t.job_id, "keys": list(t.keys)}
                      for t in self.tasks]}, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Submission:
        datetime.fromisoformat(str(data["submitted_at"]))  # ValueError when it is not a date
        return cls(submission_id=str(data["submission_id"]), executor=str(data["executor"]),
                   array_id=str(data["array_id"]), submitted_at=str(data["submitted_at"]),
                   reason=str(data["reason"]), fingerprint=str(data["fingerprint"]),
                   tasks=tuple(TaskRecord(int(t["index"]), str(t["job_id"]),
                                          tuple(str(k) for k in t["keys"]))
                               for t in data["tasks"]))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def append(path: Path, submission: Submission) -> None:
    """Append one record durably (the caller holds the study's submit lock)."""
    line = (submission.to_json() + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn last record stays apart
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:  # disk full: the record may be torn, which readers skip
        raise StorageError.of(path, exc) from None


_RECORD_START = b'{"array_id": '   # every record starts so (ASCII JSON, sorted keys)


def _torn(line: bytes) -> bool:
    """A record cut short by a crash mid-append: an ASCII prefix of a record, not valid JSON."""
    head = line[:len(_RECORD_START)]
    return line.isascii() and _RECORD_START.startswith(head) and (
        len(line) <= len(_RECORD_START) or line.startswith(_RECORD_START))


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON"
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    text = str(exc).strip().splitlines()
    return f"bad field: {text[0][:80] if text else type(exc).__name__}"


def read(path: Path) -> list[Submission]:
    """All records, oldest first; a missing ledger is empty, a record torn by a crash is skipped.

    Anything else that is not a record (not UTF-8, foreign text, a record with bad fields) is a
    `ClusterError`: trusting a ledger that lost records could submit a trial twice."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ClusterError(f"{path}: cannot read the ledger ({exc.strerror or exc})") from None
    out: list[Submission] = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line.decode("utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            out.append(Submission.from_dict(data))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, ValueError) and _torn(line):
                continue
            raise ClusterError(f"{path}:{lineno}: not a submission record ({_why(exc)}); the ledger "
                               f"was altered: restore it, or move it aside (the jobs it lists "
                               f"are then no longer tracked)") from None
    return out


def latest_tasks(submissions: list[Submission]) -> dict[str, tuple[Submission, TaskRecord]]:
    """For each key, the latest submission (and task) that included it."""
    latest: dict[str, tuple[Submission, TaskRecord]] = {}
    for sub in submissions:
        for task in sub.tasks:
            for key in task.keys:
                latest[key] = (sub, task)
    return latest



def last_executor(path: Path) -> str | None:
    """The executor of the root's latest submission (what `resume` uses unless told), None
    before the first."""
    submissions = read(path)
    return submissions[-1].executor if submissions else None
