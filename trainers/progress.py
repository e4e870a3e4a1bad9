"""A trial's progress beside its checkpoint: a few bytes of JSON, so status never opens torch files.

Written atomically right after every checkpoint, so its `step` never claims a step the checkpoint
does not hold (a crash between the two leaves it one checkpoint behind, never ahead). Between
checkpoints the trainer rewrites it at each progress line with the live step and the wall time
so far (`live_step`, `wall_s`): the measured rate that status turns into an ETA.

The progress lines (`ProgressLog`) go to the task's stdout, which is its log file, so `drosweep
logs -f` shows the training itself, not only the scheduler's lines.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from common.atomic import atomic_write_json

PROGRESS_FORMAT = 1
# a progress line whenever this much wall time or this share of the steps has passed since the
# last one, whichever comes first (and one after the first step, and one at the end): a slow run
# says something every half minute, a fast one still shows twenty points of its curve
PROGRESS_LINE_EVERY_S = 30.0
PROGRESS_LINE_EVERY_FRACTION = 0.05


@dataclass(frozen=True)
class Progress:
    step: int             # optimizer steps in the newest checkpoint
    total: int            # steps of the whole training
    epoch: int
    finished: bool
    updated_at: float     # epoch seconds
    format: int = PROGRESS_FORMAT
    # smoothed max: samples kept per trial and step since the process started ({"mean", "max",
    # "steps"}; None for other methods and older files)
    kept: dict[str, float] | None = None
    # the step reached when written (>= step: lines are written between checkpoints) and the
    # training wall seconds it took, across resumes (None in older files)
    live_step: int | None = None
    wall_s: float | None = None

    @property
    def done_steps(self) -> int:
        return self.step if self.live_step is None else self.live_step

    def seconds_per_step(self) -> float | None:
        """The measured wall seconds per step (None: nothing measured yet)."""
        if self.wall_s is None or self.wall_s <= 0 or self.done_steps <= 0:
            return None
        return self.wall_s / self.done_steps

    def remaining_s(self, now: float) -> float | None:
        """Seconds of training left at the measured rate, counted from `now` (None: no rate)."""
        per_step = self.seconds_per_step()
        if per_step is None:
            return None
        left = (self.total - self.done_steps) * per_step
        return max(0.0, left - max(0.0, now - self.updated_at))


def write_progress(path: Path, *, step: int, total: int, epoch: int, finished: bool,
                   kept: dict[str, float] | None = None, live_step: int | None = None,
                   wall_s: float | None = None) -> None:
    atomic_write_json(path, asdict(Progress(step, total, epoch, finished, time.time(),
                                            kept=kept,
                                            live_step=step if live_step is None else live_step,
                                            wall_s=wall_s)))


def read_progress(path: Path) -> Progress | None:
    """The progress file, or None when absent or unreadable (it is advisory only)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Progress(**data)
    except (OSError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class ProgressLine:
    """What one progress line says about a pack of trials trained together."""

    label: str                 # method, radius and seeds
    step: int
    total: int
    epoch: int
    loss: float                # mean training loss of the pack's trials (current epoch)
    samples_per_s: float       # training samples per wall second, over the pack, since the last
    elapsed_s: float           # wall seconds of this process's training
    kept: dict[str, float] | None = None  # smoothed max: kept samples per step

    def text(self) -> str:
        share = 100.0 * self.step / self.total if self.total else 100.0
        kept = (f" kept {self.kept['mean']:.1f}/step (max {self.kept['max']:.0f})"
                if self.kept else "")
        return (f"progress {self.label}: step {self.step}/{self.total} ({share:.0f}%) "
                f"epoch {self.epoch} loss {self.loss:.4f} {self.samples_per_s:.0f} samples/s"
                f"{kept} elapsed {self.elapsed_s:.0f} s")


class ProgressLog:
    """Decides when the trainer prints a progress line (see PROGRESS_LINE_EVERY_*) and prints it,
    flushed at once: a task's stdout is a file, which Python would otherwise buffer for minutes."""

    def __init__(self, total: int, start_step: int, *, out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.out, self.clock = total, out, clock
        self.every_steps = max(1, int(total * PROGRESS_LINE_EVERY_FRACTION))
        self.start = self.last_time = clock()
        self.last_step = start_step
        self.first = True

    def due(self, step: int) -> bool:
        if step >= self.total or self.first:
            return True
        return (step - self.last_step >= self.every_steps
                or self.clock() - self.last_time >= PROGRESS_LINE_EVERY_S)

    def rate(self, step: int) -> float:
        """Steps per wall second since the last line."""
        elapsed = self.clock() - self.last_time
        return (step - self.last_step) / elapsed if elapsed > 0 else 0.0

    def emit(self, line: ProgressLine) -> None:
        print(line.text(), file=self.out or sys.stdout, flush=True)
        self.first = False
        self.last_step, self.last_time = line.step, self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start
