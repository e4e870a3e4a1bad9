"""The operator's commands around a running study: `logs`, `cancel`, and `status --detailed`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cluster.detail import format_rows, trial_rows
from cluster.select import Selection
from cluster.states import TrialState
from cluster.status import StudyStatus


def register(sub: Any) -> None:
    del sub


def print_detailed(status: StudyStatus, selection: Selection, states: Sequence[str],
                   as_json: bool) -> int:
    rows = trial_rows(status, selection=selection, states=[TrialState(s) for s in states])
    if as_json:
        body = status.to_json()
        body["trials"] = [r.to_json() for r in rows]
        print(json.dumps(body, indent=2))
    else:
        print(format_rows(rows))
    return 0
