"""The operator's commands around a running study: `logs`, `cancel`, and `status --detailed`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.detail import format_rows, trial_rows
from cluster.select import Selection
from cluster.states import TrialState
from cluster.status import StudyStatus
from drosweep.args import add_study_arguments, study_from_args
from drosweep.jsonout import print_json
from drosweep.select_args import add_selection_arguments, selection_from
from jobs import Study

if TYPE_CHECKING:
    from cluster.submission import SubmitResult


def register(sub: Any) -> None:
    p = sub.add_parser("logs", help="a trial's task output and the traceback of its failure",
                       description="Print the stdout/stderr of the task that trained (or trains) "
                                   "a trial, and the traceback of its FAILED marker.")
    add_study_arguments(p)
    p.add_argument("key", help="trial key, e.g. robust/eps_0.1/trial_3")
    p.add_argument("--tail", type=int, default=None, metavar="N",
                   help="only the last N lines of each log file")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing what a running task writes, until it ends")
    p.set_defaults(func=run_logs)

    p = sub.add_parser("cancel", help="cancel a study's live tasks (checkpoints are kept)",
                       description="Cancel the study's queued and running tasks (all, or those "
                                   "training the selected trials); they checkpoint and stop, and "
                                   "`drosweep resume` trains them on later.")
    add_study_arguments(p)
    p.add_argument("keys", nargs="*", metavar="KEY", help="trial keys (default: every trial)")
    add_selection_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_cancel)


    p = sub.add_parser("export", help="copy the finished models into the original code's layout",
                       description="Copy every finished model to DIR/<method>/eps_<r>_trial_<i>.pt "
                                   "(the original code's names; `regular` once per radius) with "
                                   "a manifest.csv (key, file, sha256, spec).")
    add_study_arguments(p)
    p.add_argument("--to", required=True, type=Path, metavar="DIR", help="destination folder")
    p.add_argument("--layout", default="original", choices=["original"],
                   help="file layout (default: original)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from jobs.export import export_original

    study = study_from_args(args)
    result = export_original(study, args.to)
    print(f"exported {result.trials} finished trial(s) as {result.files} file(s) into "
          f"{result.dest}; manifest {result.manifest}")
    if result.not_done:
        print(f"not exported: {len(result.not_done)} trial(s) not done "
              f"(e.g. {result.not_done[0]}); run `drosweep export` again when they are")
    return 0


def print_detailed(status: StudyStatus, selection: Selection, states: Sequence[str],
                   as_json: bool) -> int:
    rows = trial_rows(status, selection=selection, states=[TrialState(s) for s in states])
    if as_json:
        body = status.to_json()
        body["trials"] = [r.to_json() for r in rows]
        print_json(body)
    else:
        print(format_rows(rows))
    return 0


def print_scripts(study: Study, result: SubmitResult) -> None:
    """The sbatch script of each array, exactly as `submit` would hand it to sbatch (an array
    that waits for one not yet submitted names it `<array #i>`)."""
    from cluster.backends.slurm import SlurmBackend
    from jobs.paths import Paths

    backend = SlurmBackend(study, Paths(study.root))
    for i, (array, options) in enumerate(zip(result.plan.arrays, result.options, strict=True)):
        print(f"# ---- array #{i}: {len(array.tasks)} task(s), sbatch script ----")
        print(backend.script(len(array.tasks), options).rstrip())


def submission_json(result: SubmitResult, study: Study) -> dict[str, Any]:
    from cluster.backends.slurm import SlurmBackend
    from drosweep.cmd_study import plan_json
    from jobs.paths import Paths

    body: dict[str, Any] = {
        "study": study.name, "executor": result.executor, "dry_run": result.dry_run,
        "already_done": result.already_done, "already_live": result.already_live,
        "trials": [t.key for t in result.plan.trials], "plan": plan_json(result.plan, study.name),
        "job_ids": list(result.job_ids), "array_ids": list(result.array_ids),
        "chained_job": result.chained_job, "errors": list(result.errors)}
    if result.dry_run and result.executor == "slurm":
        backend = SlurmBackend(study, Paths(study.root))
        body["scripts"] = [backend.script(len(a.tasks), o)
                           for a, o in zip(result.plan.arrays, result.options, strict=True)]
    return body


def run_logs(args: argparse.Namespace) -> int:
    from cluster.logs import follow, tail_lines, trial_logs
    from drosweep.errors import UsageError

    if args.tail is not None and args.tail < 0:
        raise UsageError(f"--tail must be >= 0, got {args.tail}")
    study = study_from_args(args)
    logs = trial_logs(study, args.key)
    if logs.executor is None:
        print(f"{args.key}: never submitted, no logs")
    else:
        print(f"{args.key}: {logs.executor} task {logs.job_id}")
        if not logs.files:
            print("(no log file yet: the task has not started)")
        for path in logs.files:
            print(f"==> {path} <==")
            sys.stdout.write(tail_lines(path, args.tail))
    if logs.failed is not None:
        print(f"==> FAILED.json ({logs.failed.failed_at} on {logs.failed.host}) <==")
        sys.stdout.write(logs.failed.traceback)
    if args.follow and logs.executor is not None:
        def emit(path: Path, text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()
        follow(study, logs, emit)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from cluster.cancel import cancel

    study = study_from_args(args)
    result = cancel(study, selection_from(args, study))
    if args.json:
        print_json({"study": study.name, "job_ids": list(result.job_ids),
                    "pids": list(result.pids), "keys": list(result.keys),
                    "unreachable": list(result.unreachable)})
        return 0
    what = []
    if result.job_ids:
        what.append(f"{len(result.job_ids)} SLURM task(s) ({_short(result.job_ids)})")
    if result.pids:
        what.append(f"{len(result.pids)} local process(es) (pid {_short(map(str, result.pids))})")
    print(f"cancelled {' and '.join(what)}: {len(result.keys)} trial(s) checkpoint and stop; "
          f"`drosweep resume {args.study}` trains them on")
    if result.unreachable:
        print(f"not stopped: {len(result.unreachable)} trial(s) train on another host outside "
              f"SLURM: {_short(result.unreachable)}")
    return 0


def _short(items: Any, n: int = 6) -> str:
    values = list(items)
    more = f", ... (+{len(values) - n})" if len(values) > n else ""
    return ", ".join(values[:n]) + more
