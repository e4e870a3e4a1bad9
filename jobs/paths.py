"""The one place that names files under a study root (shared filesystem).

```
<root>/study.toml                      frozen copy of the submitted study file
<root>/runs/<key>/spec.json ckpt.pt progress.json heartbeat.json model.pt DONE.json | FAILED.json
<root>/ledger.jsonl                    every submission (append-only)
<root>/logs/                           submitit folder (%A_%a)
<root>/results/metrics.parquet .csv    reduction
<root>/results/decision_map.parquet .csv   2-D studies: predictions over the plane
<root>/figures/*.png *.pdf  <root>/report.md
```
Keys are validated (`jobs.grid.parse_key`) and resolved paths checked to stay under the root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.atomic import unwritable_reason
from jobs.errors import StudyError
from jobs.grid import TrialSpec, parse_key

if TYPE_CHECKING:
    from trainers.loop import TrainPaths

DONE_NAME = "DONE.json"
FAILED_NAME = "FAILED.json"
PROGRESS_NAME = "progress.json"
HEARTBEAT_NAME = "heartbeat.json"
CHECKPOINT_NAME = "ckpt.pt"


class Paths:
    """Every file of one study root. Accepts a `TrialSpec` or its key wherever a trial is named."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self._dirs: dict[str, Path] = {}  # checked trial folders: status names 10,000s of files
        self._plain: dict[Path, bool] = {}  # <method>/eps_<r> folders known not to be links
        self._walked: set[str] = set()  # trial folders `trial_files` reached through no link

    def __repr__(self) -> str:
        return f"Paths({str(self.root)!r})"

    # study level
    @property
    def study_file(self) -> Path:
        return self.root / "study.toml"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def lock(self) -> Path:
        """Held while submitting or resuming, so two of them never double-submit."""
        return self.root / ".submit.lock"

    @property
    def lock_holder(self) -> Path:
        """Who holds the submit lock (host, pid, command, since), written as it is taken."""
        return self.root / ".submit.lock.json"

    @property
    def reduce_lock(self) -> Path:
        """Held by a reduction while it reads and rewrites the results table."""
        return self.results / ".reduce.lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cancel_requests(self) -> Path:
        """Trials `drosweep cancel` asks a local run to drop from its queue (JSON)."""
        return self.logs / "local" / "cancel.json"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def metrics_parquet(self) -> Path:
        return self.results / "metrics.parquet"

    @property
    def metrics_csv(self) -> Path:
        return self.results / "metrics.csv"

    @property
    def decision_map(self) -> Path:
        """2-D studies: what one model per (method, radius) predicts over the plane
        (reduce/decision_map.py); the figures find it beside metrics.parquet."""
        return self.results / "decision_map.parquet"

    @property
    def decision_map_csv(self) -> Path:
        return self.results / "decision_map.csv"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    # trial level
    def trial_dir(self, trial: TrialSpec | str) -> Path:
        key = trial.key if isinstance(trial, TrialSpec) else trial
        known = self._dirs.get(key)
        if known is not None:
            return known
        parse_key(key)
        folder = self.runs / key
        # a key has no `..`: only a link could lead out
        if key not in self._walked and not self._no_links(folder):
            path = folder.resolve(strict=False)
            runs = self.runs.resolve(strict=False)
            if runs not in path.parents:
                raise StudyError(f"trial key {key!r} resolves outside {runs}")
        self._dirs[key] = folder
        return folder

    def _no_links(self, folder: Path) -> bool:
        """No folder between runs/ and the trial's is a link (<method>, eps_<r>, any swept
        value's)."""
        parent = folder.parent
        plain = self._plain.get(parent)
        if plain is None:
            above = [parent, *parent.parents[:len(parent.relative_to(self.runs).parts) - 1]]
            plain = self._plain[parent] = not any(p.is_symlink() for p in above)
        return plain and not folder.is_symlink()

    def spec_file(self, trial: TrialSpec | str) -> Path:
        return self.trial_dir(trial) / "spec.json"

    def checkpoint(self, trial: TrialSpec | str) -> Path:
        return self.trial_dir(trial) / CHECKPOINT_NAME

    def model(self, trial: TrialSpec | str) -> Path:
        return self.trial_dir(trial) / "model.pt"

    def done(self, trial: TrialSpec | str) -> Path:
        return self.trial_dir(trial) / DONE_NAME

    def failed(self, trial: TrialSpec | str) -> Path:
        return self.trial_dir(trial) / FAILED_NAME

    def progress(self, trial: TrialSpec | str) -> Path:
        """Steps done as of the newest checkpoint (JSON, trainers/progress.py)."""
        return self.trial_dir(trial) / PROGRESS_NAME

    def heartbeat(self, trial: TrialSpec | str) -> Path:
        """Refreshed by the task training the trial (jobs/heartbeat.py)."""
        return self.trial_dir(trial) / HEARTBEAT_NAME

    def trial_files(self) -> TrialFiles:
        """Which files each trial folder under runs/ holds, from one walk of the tree (for scans
        of a whole study: a file that is not listed need not be opened). Symbolic links are not
        followed: files behind one are unknown, read them through `trial_dir`."""
        found: dict[str, frozenset[str] | None] = {}

        def folders(path: str, rel: str) -> list[tuple[str, str]]:
            out = []
            for entry in _entries(path):
                name = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    found[name] = None
                elif entry.is_dir():
                    out.append((entry.path, name))
            return out

        def trials(path: str, rel: str) -> None:  # below <method>/eps_<r>: swept values, trials
            for folder, name in folders(path, rel):
                if name.rpartition("/")[2].startswith("trial_"):
                    names = frozenset(entry.name for entry in _entries(folder))
                    self._walked.add(name)
                    if names:
                        found[name] = names
                else:
                    trials(folder, name)

        for method_dir, method in folders(str(self.runs), ""):
            for radius_dir, radius in folders(method_dir, method):
                trials(radius_dir, radius)  # <method>/eps_<r>/[<setting>_<value>/...]trial_<i>
        return TrialFiles(found)

    def done_files(self) -> dict[str, Path]:
        """Key → DONE marker of every trial under runs/ that has one, from one walk of the
        tree (for scans of a whole study: no per-key path checks, the keys are the folders)."""
        found: dict[str, Path] = {}
        for folder, _, files in os.walk(self.runs):
            if DONE_NAME in files:
                found[Path(folder).relative_to(self.runs).as_posix()] = Path(folder) / DONE_NAME
        return found

    def train_paths(self, trial: TrialSpec | str) -> TrainPaths:
        from trainers.loop import TrainPaths  # the training loop (torch) only when training

        return TrainPaths(model=self.model(trial), checkpoint=self.checkpoint(trial),
                          progress=self.progress(trial))


@dataclass(frozen=True)
class TrialFiles:
    """What one walk of runs/ found (`Paths.trial_files`)."""

    found: Mapping[str, frozenset[str] | None]  # key → its files; None: a symbolic link (of the
    #                                             trial or, under a shorter key, a folder above)

    def may_hold(self, key: str, name: str) -> bool:
        """False when the walk saw that the trial's folder holds no `name` (or does not exist);
        True when it does, or when a symbolic link hid the folder from the walk."""
        names = self.found.get(key)
        if names is not None:
            return name in names
        if key in self.found:
            return True
        parts = key.split("/")
        return any("/".join(parts[:n]) in self.found for n in range(1, len(parts)))


def _entries(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def check_root_writable(root: str | os.PathLike[str]) -> None:
    """Fail (StudyError) unless the root exists and is writable or can be created; creates
    nothing."""
    path = Path(root).expanduser().absolute()
    reason = unwritable_reason(path)
    if reason is not None:
        raise StudyError(f"study root {path} is not writable ({reason})")
