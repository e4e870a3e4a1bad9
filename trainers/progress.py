"""A trial's progress beside its checkpoint: a few bytes of JSON, so status never opens torch files.

Written atomically right after every checkpoint, so it never claims a step the checkpoint does not
hold (a crash between the two leaves it one checkpoint behind, never ahead).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common.atomic import atomic_write_json

PROGRESS_FORMAT = 1


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


def write_progress(path: Path, *, step: int, total: int, epoch: int, finished: bool,
                   kept: dict[str, float] | None = None) -> None:
    atomic_write_json(path, asdict(Progress(step, total, epoch, finished, time.time(),
                                            kept=kept)))


def read_progress(path: Path) -> Progress | None:
    """The progress file, or None when absent or unreadable (it is advisory only)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Progress(**data)
    except (OSError, ValueError, TypeError):
        return None
