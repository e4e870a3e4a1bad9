"""`status --detailed`: one row per trial, with its steps done read from `progress.json`.

The steps come from the small JSON file the trainer writes beside each checkpoint, never from the
torch checkpoint itself, so a 10,000-trial study is listed in about a second
(benchmarks/status_detailed.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from cluster.select import ALL, Selection
from cluster.state_enums import TrialState
from cluster.status import StudyStatus
from jobs.paths import PROGRESS_NAME, Paths
from trainers.progress import read_progress


@dataclass(frozen=True)
class TrialRow:
    key: str
    state: TrialState
    job_id: str | None
    host: str | None
    steps: int | None       # in its newest checkpoint; None before the first one
    total: int | None
    error: str              # failed: the error line

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "state": self.state.value, "job_id": self.job_id,
                "host": self.host, "steps": self.steps, "total_steps": self.total,
                "error": self.error or None}


def trial_rows(status: StudyStatus, *, selection: Selection = ALL,
               states: Collection[TrialState] = ()) -> list[TrialRow]:
    """Rows of the selected trials in `states` (default: every state but done), study order."""
    paths = Paths(status.root)
    wanted = set(states) or set(TrialState) - {TrialState.DONE}
    rows: list[TrialRow] = []
    # progress files are opened only where the walk of runs/ behind the status saw one
    files = status.files if status.files is not None else paths.trial_files()
    for t in status.trials:
        if t.state not in wanted or not selection.matches(t.trial):
            continue
        progress = status.progress.get(t.trial.key)
        if progress is None and files.may_hold(t.trial.key, PROGRESS_NAME):
            progress = read_progress(paths.progress(t.trial.key))
        steps = total = None
        if progress is not None:
            steps, total = progress.step, progress.total
        error = t.detail.strip().splitlines()[0] if t.detail.strip() else ""
        rows.append(TrialRow(t.trial.key, t.state, t.job_id, t.host, steps, total, error))
    return rows


def format_rows(rows: list[TrialRow]) -> str:
    if not rows:
        return "no trials match"
    width = max(len("key"), *(len(r.key) for r in rows))
    lines = [f"{'key':<{width}}  {'state':<8} {'job':<14} {'host':<16} {'steps':>17}  error"]
    for r in rows:
        steps = "-" if r.steps is None else f"{r.steps}/{r.total}"
        lines.append(f"{r.key:<{width}}  {r.state.value:<8} {r.job_id or '-':<14} "
                     f"{r.host or '-':<16} {steps:>17}  {r.error}".rstrip())
    return "\n".join(lines)
