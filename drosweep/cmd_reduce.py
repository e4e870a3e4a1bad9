"""`drosweep reduce | plot | report | demo`: from trained models to the table, figures and report."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import submitit

from drosweep.args import add_study_arguments, study_from_args
from jobs import Paths, Study, expand, load_study
from plots import ClaimSettings, RenderResult, ResultsError, render
from reduce import (
    EvalSettings,
    EvalTask,
    ReduceError,
    ReduceOptions,
    ReduceSummary,
    eval_settings_for,
    reduce_study,
    settle,
)
from reduce.run import Mapper, TaskFn, in_process
from reduce.table import error_rows
from reduce.tasks import Row, unit_base

REPO = Path(__file__).resolve().parents[1]
SMOKE_STUDY = REPO / "studies" / "smoke.toml"
# what the demo evaluates with when the study file has no [evaluation] table: the metrics of the
# paper on a seeded 500-point test subset, with a shorter Lipschitz search
DEMO_EVALUATION = EvalSettings(test_subset=500, mean_samples=200, ga_generations=100)


def register(sub: Any) -> None:
    p = sub.add_parser("reduce", help="evaluate every trained model into results/metrics.parquet",
                       description="Wait for the trials (optional), evaluate each trained model "
                                   "not yet in the results table, and write the table.")
    add_study_arguments(p)
    p.add_argument("--wait", action="store_true", help="poll the DONE markers until all trials "
                   "are done or failed")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="with --wait: give up after S seconds (exit code 2, listing what is "
                        "missing)")
    p.add_argument("--poll", type=float, default=10.0, metavar="S", help="poll interval")
    p.add_argument("--partial", action="store_true",
                   help="reduce the trials done so far instead of refusing an incomplete study")
    p.add_argument("--executor", default="local", choices=["local", "debug", "slurm"],
                   help="local/debug: evaluate in this process; slurm: as a job array "
                        "(default: local)")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--data-dir", default=None, help="data folder (default: the study's "
                   "data_dir, else $DROSWEEP_DATA_DIR, else the user cache)")
    p.add_argument("--failed-below", type=float, default=0.12, metavar="ACC",
                   help="flag a training as failed when its clean accuracy is below ACC "
                        "(default 0.12, the paper's)")
    p.add_argument("--models-per-task", type=int, default=16,
                   help="slurm: models evaluated by one array task")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_reduce)

    for name, fn, text in (("plot", run_plot, "figures (PNG + PDF) from the results table"),
                           ("report", run_report,
                            "figures and report.md (medians, claim checks) from the table")):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_study_arguments(p)
        p.add_argument("--include-failed", action="store_true",
                       help="include failed trainings in the medians and bands")
        if name == "report":
            p.add_argument("--clean-margin", type=float, default=ClaimSettings.clean_margin,
                           help="claim check: robust's median clean accuracy may trail "
                                "regular's by this much (default %(default)s)")
        p.set_defaults(func=fn)

    p = sub.add_parser("demo", help="the smoke study end to end on this machine: train, "
                                    "reduce, plot, report",
                       description="Run studies/smoke.toml with the local executor (minutes on "
                                   "2 CPU cores) and print where the figures and report are.")
    p.add_argument("--root", default=None, help="where the study goes (default: runs/smoke)")
    p.add_argument("--data-dir", default=None,
                   help="data folder (default: $DROSWEEP_DATA_DIR, else the user cache)")
    p.add_argument("--study", default=str(SMOKE_STUDY), help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_demo)


# ---------------------------------------------------------------------------------- reduce


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ReduceError(f"{name} must be > 0, got {value:g}")


def _options(args: argparse.Namespace) -> ReduceOptions:
    _check_positive("--timeout", args.timeout)
    _check_positive("--poll", args.poll)
    _check_positive("--models-per-task", args.models_per_task)
    if not 0 <= args.failed_below <= 1:
        raise ReduceError(f"--failed-below must be in [0, 1], got {args.failed_below:g}")
    return ReduceOptions(wait=args.wait, timeout_s=args.timeout, poll_s=args.poll,
                         partial=args.partial, failed_threshold=args.failed_below,
                         device=args.device, data_dir=args.data_dir,
                         models_per_task=args.models_per_task, progress=not args.no_progress)


def slurm_mapper(study: Study, poll_s: float = 15.0) -> Mapper:
    """Evaluation tasks as one SLURM job array, configured like the study's training arrays."""
    from cluster.backends import get_backend
    from cluster.backends.slurm import SlurmBackend

    backend = get_backend("slurm", study, Paths(study.root))
    backend.check()
    assert isinstance(backend, SlurmBackend)

    def executor(size: int) -> submitit.Executor:
        ex = backend.executor(size)
        ex.update_parameters(job_name=f"drosweep-reduce-{study.name}")
        return ex

    return array_mapper(executor, poll_s)


def array_mapper(executor: Callable[[int], submitit.Executor], poll_s: float) -> Mapper:
    """Tasks submitted as one array; results collected as jobs end, by polling their states and
    never blocking on a result: a task that ends without one (killed, out of memory, raised)
    turns its models into `reduce_error` rows."""

    def mapper(fn: TaskFn, tasks: Sequence[EvalTask]) -> Iterator[list[Row]]:
        if not tasks:
            return
        ex = executor(len(tasks))
        with ex.batch():
            jobs = [ex.submit(fn, task) for task in tasks]
        pending = dict(zip(range(len(jobs)), jobs, strict=True))
        while pending:
            for i, job in list(pending.items()):
                if not job.done():
                    continue
                del pending[i]
                try:
                    yield job.result()
                except Exception as exc:  # the task died: its models are failed-to-reduce
                    reason = f"evaluation job {job.job_id} failed: {_job_error(exc)}"
                    yield [row for unit in tasks[i].units for row in error_rows(
                        unit.radii, unit_base(unit, tasks[i], "slurm"), reason)]
            if pending:
                time.sleep(poll_s)

    return mapper


def _job_error(exc: Exception) -> str:
    """The task's own error line and its log file, out of submitit's long message."""
    text = str(exc)
    sections = [s for s in re.split(r"\n-{10,}\n", text) if s.strip()]
    trace = sections[1] if len(sections) > 2 else sections[0] if sections else ""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    logs = [ln.strip(" -") for ln in text.splitlines() if ln.strip().endswith("_log.err")]
    reason = lines[-1] if lines else type(exc).__name__
    return reason[:300] + (f" (log: {logs[0]})" if logs else "")


def print_summary(summary: ReduceSummary) -> None:
    print(f"results: {summary.parquet} ({summary.rows} rows; {summary.evaluated} model(s) "
          f"evaluated, {summary.reused} unchanged) in {summary.wall_s:.1f}s")
    for key, reason in summary.errors:
        print(f"not reduced {key}: {reason}")
    if summary.failed_training:
        print(f"{len(summary.failed_training)} failed training(s) flagged (kept in the table, "
              f"excluded from the figures by default)")
    if summary.missing or summary.failed:
        print(f"partial: {len(summary.missing)} trial(s) not finished, {len(summary.failed)} "
              f"failed in training")


def run_reduce(args: argparse.Namespace) -> int:
    study = study_from_args(args)
    options = _options(args)
    settings = eval_settings_for(study)  # bad [evaluation] fails now, not after the wait
    mapper: Mapper = slurm_mapper(study) if args.executor == "slurm" else in_process
    scan = settle(study, options)
    summary = reduce_study(study, options, settings, mapper=mapper, scan=scan)
    print_summary(summary)
    return 1 if summary.errors else 0


def reduce_and_report(root: str, device: str = "auto") -> str:
    """The job chained after a study's training arrays (SLURM `afterany`): reduce what finished
    (partial), then figures and report. Picklable by reference, for a submitit job."""
    paths = Paths(root)
    study = load_study(paths.study_file, root=root)
    options = ReduceOptions(partial=True, device=device, progress=False)
    summary = reduce_study(study, options)
    print_summary(summary)
    try:
        rendered = render(paths.metrics_parquet, paths.figures, paths.report,
                          study_text=study.text, threshold=options.failed_threshold)
    except ResultsError as exc:  # no trial finished: nothing to draw
        print(f"no figures: {exc}")
        return str(paths.metrics_parquet)
    print_report(rendered)
    return str(paths.report)


# ---------------------------------------------------------------------------- plot, report


def _render(args: argparse.Namespace, with_report: bool) -> RenderResult:
    study = study_from_args(args)
    paths = Paths(study.root)
    claims = ClaimSettings(clean_margin=getattr(args, "clean_margin", ClaimSettings.clean_margin))
    try:
        return render(paths.metrics_parquet, paths.figures, paths.report if with_report else None,
                      study_text=study.text, include_failed=args.include_failed,
                      claim_settings=claims)
    except ResultsError as exc:
        raise ReduceError(str(exc)) from None


def run_plot(args: argparse.Namespace) -> int:
    result = _render(args, with_report=False)
    print(f"{len(result.figures)} figure files in {result.figures[0].parent}")
    return 0


def print_report(result: RenderResult) -> None:
    for claim in result.claims:
        print(claim.line())
    print(f"report: {result.report}")
    if result.figures:
        print(f"figures: {result.figures[0].parent}")


def run_report(args: argparse.Namespace) -> int:
    print_report(_render(args, with_report=True))
    return 0


# ------------------------------------------------------------------------------------ demo


def run_demo(args: argparse.Namespace) -> int:
    from cluster import submit
    from cluster.checks import check_data

    start = time.monotonic()
    study = study_from_args(args)
    settings = eval_settings_for(study) if study.evaluation else DEMO_EVALUATION
    data_dir = check_data(study, args.data_dir)
    if data_dir is not None:
        study = dataclasses.replace(study, data_dir=Path(data_dir))
        os.environ["DROSWEEP_DATA_DIR"] = str(data_dir)  # for the local task processes
    progress = not args.no_progress
    n_trials = len(expand(study))
    print(f"[1/3] training study {study.name!r}: {n_trials} trials with the local executor "
          f"into {study.root}")
    result = submit(study, "local", progress=progress)
    for line in result.errors:
        print(line)
    print(f"      trained in {time.monotonic() - start:.0f}s")
    print("[2/3] evaluating the trained models")
    options = ReduceOptions(partial=True, progress=progress, device="auto",
                            data_dir=str(data_dir) if data_dir else None)
    summary = reduce_study(study, options, settings)
    print_summary(summary)
    print("[3/3] figures and report")
    paths = Paths(study.root)
    rendered = render(paths.metrics_parquet, paths.figures, paths.report, study_text=study.text,
                      threshold=options.failed_threshold)
    print_report(rendered)
    print(f"demo finished in {time.monotonic() - start:.0f}s")
    return 1 if result.errors or summary.errors else 0
