"""Scheduler job states and trial states, each an enum with one terminal/live split."""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    """A SLURM job state as `sacct` prints it (first word: `CANCELLED by 0` is CANCELLED)."""

    PENDING = "PENDING"
    REQUEUED = "REQUEUED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    REQUEUE_FED = "REQUEUE_FED"
    CONFIGURING = "CONFIGURING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    SUSPENDED = "SUSPENDED"
    STOPPED = "STOPPED"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    RESIZING = "RESIZING"
    RESV_DEL_HOLD = "RESV_DEL_HOLD"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    REVOKED = "REVOKED"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, text: str) -> JobState:
        word = (text.split() or ["UNKNOWN"])[0].rstrip("+").upper()
        try:
            return cls(word)
        except ValueError:
            return cls.UNKNOWN

    @property
    def running(self) -> bool:
        return self in _RUNNING

    @property
    def waiting(self) -> bool:
        return self in _WAITING

    @property
    def live(self) -> bool:
        """The job may still run (or run again): its trials must not be resubmitted."""
        return self in _RUNNING or self in _WAITING

    @property
    def terminal(self) -> bool:
        return not self.live and self is not JobState.UNKNOWN


_RUNNING = frozenset({JobState.RUNNING, JobState.COMPLETING, JobState.CONFIGURING,
                      JobState.SUSPENDED, JobState.STOPPED, JobState.SIGNALING,
                      JobState.STAGE_OUT, JobState.RESIZING})
_WAITING = frozenset({JobState.PENDING, JobState.REQUEUED, JobState.REQUEUE_HOLD,
                      JobState.REQUEUE_FED, JobState.RESV_DEL_HOLD})


class TrialState(enum.StrEnum):
    """What `drosweep status` reports for one trial."""

    DONE = "done"          # DONE marker: the model is complete
    RUNNING = "running"    # its task is running and training it now
    PENDING = "pending"    # submitted, waiting (queued, requeued, or later in a running pack)
    FAILED = "failed"      # FAILED marker, or its job ended without a DONE marker
    STOPPED = "stopped"    # has a checkpoint, not running, not done: `resume` trains it on
    MISSING = "missing"    # never submitted (or nothing known about its job), no checkpoint
    CHANGED = "changed"    # DONE marker, but the model file's size or time (or the data) differ


TRIAL_STATES: tuple[TrialState, ...] = tuple(TrialState)
# the states every summary lists; `stopped` and `changed` (a damaged DONE trial) are listed only
# where they occur, so a study without them reads as it always did
USUAL_STATES: tuple[TrialState, ...] = tuple(
    s for s in TrialState if s not in (TrialState.STOPPED, TrialState.CHANGED))
