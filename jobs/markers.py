"""Completion markers: `DONE.json` (the model is durable and verified) and `FAILED.json`.

DONE is written atomically only after the model file has been written (atomically, fsync'd) and
its sha256 taken, so a DONE marker always points at a complete model. Readers tolerate a shared
filesystem that shows a file a moment before its content: a marker that cannot be parsed yet is
re-read briefly, then treated as absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import traceback as tb
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json
from jobs.grid import TrialSpec
from jobs.paths import Paths

MARKER_FORMAT = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def slurm_job_id() -> str | None:
    """`<array>_<index>` inside an array task, the plain job id otherwise, None outside SLURM."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    index = os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and index:
        return f"{array}_{index}"
    return os.environ.get("SLURM_JOB_ID")


@dataclass(frozen=True)
class DoneMarker:
    key: str
    model_sha256: str
    steps: int
    epochs: int
    wall_s: float            # wall time of the call that finished the trial
    final_loss: float
    resumed_from: int        # step the finishing call started from
    host: str
    slurm_job_id: str | None
    finished_at: str
    spec: dict[str, Any]
    format: int = MARKER_FORMAT
    precision: str | None = None  # the matmul precision it trained with (None: not recorded)
    device_model: str | None = None  # GPU name, or CPU model and threads (None: older marker)
    pack: int | None = None          # trials trained with it as one batched model
    # smoothed max: samples kept per step by the finishing call ({"mean", "max", "steps"})
    kept_samples: dict[str, float] | None = None
    # the model file as written: `status` compares them on every call (a stat, no hashing), so a
    # truncated, deleted or swapped file shows at once (None: older marker)
    model_size: int | None = None
    model_mtime_ns: int | None = None
    # path -> sha256 of each data file it trained on (trainers/datasets/fingerprint.py); a change
    # shows the trial as changed (None: older marker, or not recorded: unknown, not changed)
    data_files: dict[str, str] | None = None


@dataclass(frozen=True)
class FailedMarker:
    key: str
    error: str               # `ExceptionType: message`
    traceback: str
    host: str
    slurm_job_id: str | None
    failed_at: str
    format: int = MARKER_FORMAT


def write_done(paths: Paths, trial: TrialSpec, *, model_sha256: str, steps: int, epochs: int,
               wall_s: float, final_loss: float, resumed_from: int,
               precision: str | None = None, device_model: str | None = None,
               pack: int | None = None,
               kept_samples: dict[str, float] | None = None,
               model_stat: os.stat_result | None = None,
               data_files: dict[str, str] | None = None) -> DoneMarker:
    marker = DoneMarker(key=trial.key, model_sha256=model_sha256, steps=steps, epochs=epochs,
                        wall_s=wall_s, final_loss=final_loss, resumed_from=resumed_from,
                        host=socket.gethostname(), slurm_job_id=slurm_job_id(),
                        finished_at=_now(), spec=trial.train_spec.to_dict(),
                        precision=precision, device_model=device_model, pack=pack,
                        kept_samples=kept_samples,
                        model_size=model_stat.st_size if model_stat else None,
                        model_mtime_ns=model_stat.st_mtime_ns if model_stat else None,
                        data_files=data_files)
    atomic_write_json(paths.done(trial), asdict(marker))
    with contextlib.suppress(FileNotFoundError):
        paths.failed(trial).unlink()
    return marker


def write_failed(paths: Paths, trial: TrialSpec, exc: BaseException) -> FailedMarker:
    marker = FailedMarker(key=trial.key, error=f"{type(exc).__name__}: {exc}",
                          traceback="".join(tb.format_exception(exc)),
                          host=socket.gethostname(), slurm_job_id=slurm_job_id(),
                          failed_at=_now())
    atomic_write_json(paths.failed(trial), asdict(marker))
    return marker


def _read_json(path: Path, retries: int, delay_s: float) -> dict[str, Any] | None:
    for attempt in range(retries + 1):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            return data
        if attempt < retries:
            time.sleep(delay_s)
    return None


def _done(data: dict[str, Any] | None) -> DoneMarker | None:
    if data is None:
        return None
    try:
        return DoneMarker(**data)
    except TypeError:
        return None


def read_done(paths: Paths, trial: TrialSpec | str, *, retries: int = 2,
              delay_s: float = 0.2) -> DoneMarker | None:
    return _done(_read_json(paths.done(trial), retries, delay_s))


def read_done_at(path: Path) -> DoneMarker | None:
    """The DONE marker at a known path, read once (scans of a whole study; see Paths.done_files)."""
    return _done(_read_json(path, 0, 0.0))


def read_failed(paths: Paths, trial: TrialSpec | str, *, retries: int = 2,
                delay_s: float = 0.2) -> FailedMarker | None:
    data = _read_json(paths.failed(trial), retries, delay_s)
    if data is None:
        return None
    try:
        return FailedMarker(**data)
    except TypeError:
        return None

