"""`reduce_study`: from DONE markers to the results table, incrementally.

Models already in the table with the same sha256 and evaluation settings are not evaluated again;
the others are split into `EvalTask`s and handed to a mapper (in-process by default; the CLI may
pass one that runs them as a job array). The table is rewritten atomically as results arrive and
at the end, so an interrupted reduction leaves a complete table behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import filelock
import pandas as pd
from tqdm import tqdm

from jobs import Paths, Study, TrialSpec, evaluation_radii, expand, read_done
from jobs.commands import study_command
from jobs.evaluation import EvalSettings
from jobs.integrity import model_problem
from reduce.decision_map import write_study_map
from reduce.errors import ReduceError
from reduce.eval_tasks import EvalTask, EvalUnit, Row, run_eval_task, unit_base
from reduce.evaluate import metrics_of
from reduce.table import (
    ERROR_METRIC,
    StudyIdentity,
    error_rows,
    flag_failed_training,
    normalize,
    read_table,
    write_table,
)
from reduce.wait import MarkerScan, scan_markers, wait_for_markers
from trainers.datasets.fingerprint import data_change

TaskFn = Callable[[EvalTask], list[Row]]
Mapper = Callable[[TaskFn, Sequence[EvalTask]], Iterable[list[Row]]]


@dataclass(frozen=True)
class ReduceOptions:
    wait: bool = False
    timeout_s: float | None = None
    poll_s: float = 10.0
    partial: bool = False
    failed_threshold: float | None = None  # clean accuracy below it: a failed training (None:
    #                                         `failed_threshold_for` the study's data set)
    device: str = "auto"
    data_dir: str | None = None      # None: the study's data_dir, else $DROSWEEP_DATA_DIR / cache
    models_per_task: int = 16        # models per EvalTask (per array element)
    save_every_s: float = 60.0
    progress: bool = True


PAPER_FAILED_BELOW = 0.12  # the paper's threshold, for Avila's 12 classes


def chance_for(study: Study) -> float:
    """The accuracy of guessing: 1 / classes of the study's data set."""
    from trainers.datasets import get_source

    return 1.0 / get_source(study.dataset).shape(study.data_options).n_classes


def failed_threshold_for(study: Study, threshold: float | None = None) -> float:
    """`threshold` when given, else the paper's 0.12 or chance level (1 / classes) where that is
    higher: 0.12 for Avila's 12 classes, 0.5 for a 2-class set (below it, worse than guessing)."""
    if threshold is not None:
        return threshold
    return max(PAPER_FAILED_BELOW, chance_for(study))


@dataclass(frozen=True)
class ReduceSummary:
    parquet: Path
    csv: Path
    rows: int
    evaluated: int                   # models evaluated by this call
    reused: int                      # models whose rows were already up to date
    errors: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (key, reason)
    missing: tuple[str, ...] = ()    # trials without a DONE marker (with --partial)
    failed: tuple[str, ...] = ()     # trials with a FAILED marker
    failed_training: tuple[str, ...] = ()
    wall_s: float = 0.0


def eval_settings_for(study: Study) -> EvalSettings:
    """The study's `[evaluation]` table (read and checked when the study loaded), else the
    paper's evaluation."""
    return study.evaluation or EvalSettings()


def in_process(fn: TaskFn, tasks: Sequence[EvalTask]) -> Iterator[list[Row]]:
    for task in tasks:
        yield fn(task)


def _up_to_date(existing: pd.DataFrame, unit: EvalUnit, settings: EvalSettings) -> bool:
    rows = existing[(existing["key"] == unit.key) & (existing["model_sha256"] == unit.model_sha256)
                    & (existing["settings_hash"] == settings.digest)
                    & (existing["metric"] != ERROR_METRIC)]
    have = set(zip(rows["radius"], rows["metric"], strict=True))
    return all((float(r), m) in have for r in unit.radii for m in metrics_of(settings))


def _units(study: Study, paths: Paths, trials: Sequence[TrialSpec], done: Iterable[str],
           changed: dict[str, str] | None = None) -> list[EvalUnit]:
    """The DONE models to evaluate; `changed` collects key → reason of each whose data changed
    since it trained (it is reported, not evaluated)."""
    by_key = {t.key: t for t in trials}
    units: list[EvalUnit] = []
    for key in done:
        trial = by_key[key]
        marker = read_done(paths, trial)
        if marker is None:  # vanished since the scan
            continue
        reason = data_change(marker.data_files)
        if reason is not None and changed is not None:
            changed[key] = reason
        units.append(EvalUnit(key=key, method=trial.method.value, trial=trial.trial,
                              trained_radius=trial.radius,
                              radii=tuple(float(r) for r in evaluation_radii(study, trial)),
                              model_path=str(paths.model(trial)),
                              model_sha256=marker.model_sha256, axes=trial.axes))
    return units


def _chunks(units: Sequence[EvalUnit], size: int) -> list[tuple[EvalUnit, ...]]:
    return [tuple(units[i:i + size]) for i in range(0, len(units), size)]


def settle(study: Study, options: ReduceOptions) -> MarkerScan:
    """The markers, after waiting when asked; refuses an incomplete study unless partial."""
    paths, trials = Paths(study.root), expand(study)
    if options.wait:
        scan = wait_for_markers(paths, trials, timeout_s=options.timeout_s,
                                poll_s=options.poll_s, progress=options.progress,
                                status_command=study_command("status", study))
    else:
        scan = scan_markers(paths, trials)
    if not scan.complete and not options.partial:
        raise ReduceError(f"study {study.name!r} is incomplete: {len(scan.done)} of {len(trials)} "
                          f"trials done, {len(scan.failed)} failed, {len(scan.missing)} not "
                          f"finished; wait with --wait, finish with "
                          f"`{study_command('resume', study)}`, or reduce "
                          f"what is there with --partial")
    return scan


def reduce_study(study: Study, options: ReduceOptions = ReduceOptions(),
                 settings: EvalSettings | None = None, mapper: Mapper = in_process,
                 scan: MarkerScan | None = None) -> ReduceSummary:
    """Evaluate every DONE model not yet in the table and (re)write the table.

    Two reductions of one study run one after the other (a lock under results/), so neither
    overwrites the other's rows. What runs in this process uses the study's `cpus_per_task`
    torch threads, as one of its tasks does: on a shared machine all-core threads of small
    models oversubscribe the cores and wait on each other.
    """
    from trainers.device import cpu_threads

    start = time.monotonic()
    settings = settings or eval_settings_for(study)
    paths = Paths(study.root)
    scan = scan or settle(study, options)
    failed_threshold_for(study, options.failed_threshold)  # reads a table's shape: a bad table
    #                                                        is refused before results/ is made
    paths.results.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(paths.reduce_lock)), cpu_threads(study.cluster.cpus_per_task):
        return _reduce_locked(study, options, settings, mapper, scan, start)


def _reduce_locked(study: Study, options: ReduceOptions, settings: EvalSettings, mapper: Mapper,
                   scan: MarkerScan, start: float) -> ReduceSummary:
    paths, trials = Paths(study.root), expand(study)
    identity = StudyIdentity(study.name, study.fingerprint, (study.grid_fingerprint,))
    existing = read_table(paths.metrics_parquet, identity)
    existing["study_fingerprint"] = study.fingerprint  # a table from before the grid could grow
    changed: dict[str, str] = {}
    units = _units(study, paths, trials, scan.done, changed)
    current = {(u.key, u.model_sha256) for u in units}
    # a cached row is trusted only while the model file still matches its DONE marker and its
    # data what it trained on; one that does not is reported (an error row) instead of metrics
    todo = [u for u in units if not _up_to_date(existing, u, settings) or u.key in changed
            or model_problem(paths, u.key, u.model_sha256) is not None]
    todo_keys = {u.key for u in todo}
    still_current = pd.Series([(k, s) in current and k not in todo_keys for k, s in
                               zip(existing["key"], existing["model_sha256"], strict=True)],
                              index=existing.index, dtype=bool)
    # rows of trials the file does not list (a selection of the root's grid) stay as they are
    outside = ~existing["key"].isin({t.key for t in trials})
    keep = existing[(still_current & (existing["settings_hash"] == settings.digest)) | outside]
    data_dir = options.data_dir or (str(study.data_dir) if study.data_dir else None)

    def task_of(chunk: tuple[EvalUnit, ...]) -> EvalTask:
        return EvalTask(units=chunk, settings=settings, dataset=study.dataset, data_dir=data_dir,
                        data_options=study.data_options, device=options.device, study=study.name,
                        study_fingerprint=study.fingerprint)

    tasks = [task_of(chunk) for chunk in _chunks([u for u in todo if u.key not in changed],
                                                 1 if mapper is in_process
                                                 else options.models_per_task)]
    stale = tuple(u for u in todo if u.key in changed)  # reported with the reason, not evaluated
    new_rows: list[Row] = [row for u in stale for row in
                           error_rows(u.radii, unit_base(u, task_of(stale), "none"),
                                      changed[u.key])]
    last_save = time.monotonic()
    threshold = failed_threshold_for(study, options.failed_threshold)

    def table() -> pd.DataFrame:
        parts = [keep] + ([pd.DataFrame(new_rows)] if new_rows else [])
        df = normalize(pd.concat(parts, ignore_index=True)) if new_rows else keep
        return flag_failed_training(df, threshold)

    bar = tqdm(total=len(todo), desc="reducing", unit="model", disable=not options.progress,
               dynamic_ncols=True)
    try:
        for rows in mapper(run_eval_task, tasks):
            new_rows.extend(rows)
            bar.update(len({r["key"] for r in rows}))
            if time.monotonic() - last_save >= options.save_every_s:
                write_table(table(), paths.metrics_parquet, paths.metrics_csv)
                last_save = time.monotonic()
    finally:
        bar.close()
    final = table()
    write_table(final, paths.metrics_parquet, paths.metrics_csv)
    write_study_map(study, final, data_dir, options.device)
    errors = final[final["metric"] == ERROR_METRIC].drop_duplicates("key")
    flagged = final[final["failed_training"]]["key"].unique()
    return ReduceSummary(parquet=paths.metrics_parquet, csv=paths.metrics_csv, rows=len(final),
                         evaluated=len(todo), reused=len(units) - len(todo),
                         errors=tuple(zip(errors["key"], errors["error"], strict=True)),
                         missing=scan.missing, failed=scan.failed,
                         failed_training=tuple(sorted(map(str, flagged))),
                         wall_s=time.monotonic() - start)
