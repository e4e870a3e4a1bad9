"""Is a DONE trial's model file the one its marker certifies, and its data what it trained on?

The DONE marker records the sha256 of the model file written by the run that finished the trial.
A file that no longer matches (altered, corrupted, replaced) is reported wherever it would be
trusted — `status --verify`, `reduce` before reusing a cached row or evaluating — and never
trained over: the task that finds the DONE marker leaves the trial alone. The same holds for
the data files the marker records (trainers/datasets/fingerprint.py): an edited table makes its
trials changed, with the file named.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.atomic import differing_prefixes, sha256_file
from jobs.grid import TrialSpec
from jobs.markers import DoneMarker, read_done
from jobs.paths import Paths
from trainers.datasets.fingerprint import data_change


def model_problem(paths: Paths, trial: TrialSpec | str, certified_sha256: str) -> str | None:
    """None when the model file has the sha256 its DONE marker certifies, else the reason."""
    path = paths.model(trial)
    try:
        actual = sha256_file(path)
    except FileNotFoundError:
        return f"{path}: model file missing (its DONE marker certifies sha256 " \
               f"{certified_sha256[:12]})"
    except OSError as exc:
        return f"{path}: model file unreadable ({exc.strerror or exc})"
    if actual != certified_sha256:
        shown, certified = differing_prefixes(actual, certified_sha256)
        return (f"{path}: sha256 {shown} does not match its DONE marker "
                f"({certified}): altered or corrupted after training")
    return None


def quick_model_problem(paths: Paths, trial: TrialSpec | str, marker: DoneMarker) -> str | None:
    """None when the model file has the size and modification time its DONE marker records
    (or the marker records none), else the reason: the check every `status` makes, one stat and
    no hashing, that catches truncation, deletion and a swapped file (`--verify` hashes)."""
    if marker.model_size is None or marker.model_mtime_ns is None:
        return None
    path = paths.model(trial)
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{path}: model file missing (its DONE marker certifies {marker.model_size} bytes)"
    except OSError as exc:
        return f"{path}: model file unreadable ({exc.strerror or exc})"
    if st.st_size != marker.model_size:
        return (f"{path}: {st.st_size} bytes, its DONE marker recorded {marker.model_size}: "
                f"altered after training")
    if st.st_mtime_ns != marker.model_mtime_ns:
        return f"{path}: modified after its DONE marker was written (its time changed)"
    return None


def done_problem(paths: Paths, trial: TrialSpec | str, marker: DoneMarker) -> str | None:
    """None when a DONE trial still stands as its marker recorded it, else the reason: the model
    file's stat (`quick_model_problem`), then the data it trained on (hashed once per process
    and file version)."""
    return quick_model_problem(paths, trial, marker) or data_change(marker.data_files)


@dataclass(frozen=True)
class VerifyReport:
    checked: int                            # DONE trials whose model file was hashed
    problems: tuple[tuple[str, str], ...]   # (key, reason) of each model that does not match

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_models(paths: Paths, trials: list[TrialSpec]) -> VerifyReport:
    """Hash the model file of every DONE trial and compare it with its marker; its data files
    too."""
    checked = 0
    problems: list[tuple[str, str]] = []
    for trial in trials:
        marker = read_done(paths, trial, retries=0)
        if marker is None:
            continue
        checked += 1
        problem = model_problem(paths, trial, marker.model_sha256) \
            or data_change(marker.data_files)
        if problem is not None:
            problems.append((trial.key, problem))
    return VerifyReport(checked, tuple(problems))
