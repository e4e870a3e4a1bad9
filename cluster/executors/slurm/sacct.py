"""Job states from SLURM accounting: one `sacct` call for all arrays of a poll.

submitit's own state lookups call sacct per job and its `result()` blocks forever on a task that
died without a result pickle, so status is read here instead: `sacct -X -n -P -o JobID,State`
for every array id at once, parsed into `{job id: JobState}` where a job id is `<array>_<index>`
for array tasks (pending ranges such as `123_[5-19%2]` are expanded) and `<id>` for plain jobs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable

from cluster.errors import ClusterError
from cluster.state_enums import JobState

_JOBID_RE = re.compile(r"^(\d+)(?:_(\d+|\[[^\]]*\]))?$")

SacctRunner = Callable[[list[str]], str]
# a slurmdbd that does not answer within TIMEOUT_S is not asked again for UNANSWERED_HOLD_S:
# a command (status polls, resume) waits once, then says so at once
TIMEOUT_S = 30.0
UNANSWERED_HOLD_S = 60.0
_unanswered_since: float | None = None


def _expand_range(spec: str) -> list[int]:
    """`[5-19%2]` / `[1,3,5-7]` → the indices it names (the `%N` throttle is ignored)."""
    body = spec.strip("[]").split("%", 1)[0]
    out: list[int] = []
    for part in body.split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def parse_sacct(text: str) -> dict[str, JobState]:
    """Parse `sacct -X -n -P -o JobID,State` output; later lines win (the latest record)."""
    states: dict[str, JobState] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or "|" not in line:
            continue
        job, state_text = line.split("|", 2)[:2]
        match = _JOBID_RE.match(job.strip())
        if match is None:  # steps (123.batch), heterogeneous jobs (123+0), headers
            continue
        base, index = match.group(1), match.group(2)
        state = JobState.parse(state_text)
        if index is None:
            states[base] = state
        elif index.startswith("["):
            for i in _expand_range(index):
                states[f"{base}_{i}"] = state
        else:
            states[f"{base}_{index}"] = state
    return states


def run_sacct(args: list[str]) -> str:
    """Run sacct with `args`; ClusterError (one line) when it is missing or fails."""
    exe = shutil.which("sacct")
    if exe is None:
        raise ClusterError("sacct not found on PATH: cannot read job states "
                           "(run on a SLURM login node, or use --executor local)")
    global _unanswered_since
    if _unanswered_since is not None \
            and time.monotonic() - _unanswered_since < UNANSWERED_HOLD_S:
        raise ClusterError(f"sacct did not answer within {TIMEOUT_S:g} s a moment ago "
                           f"(slurmdbd down?)")
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        _unanswered_since = time.monotonic()
        raise ClusterError(f"sacct did not answer within {TIMEOUT_S:g} s (slurmdbd down?)"
                           ) from None
    _unanswered_since = None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise ClusterError(f"sacct failed (exit {proc.returncode}): "
                           f"{message[-1] if message else 'no message'}")
    return proc.stdout


def job_states(array_ids: Iterable[str], runner: SacctRunner = run_sacct) -> dict[str, JobState]:
    """States of all tasks of the given arrays (or plain jobs) in one sacct call."""
    ids = sorted({str(a) for a in array_ids}, key=lambda s: (len(s), s))
    if not ids:
        return {}
    return parse_sacct(runner(["-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(ids)]))
