"""The operator's commands around a running study: `logs`, `cancel` and `export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from drosweep.args import add_study_arguments, study_from_args
from drosweep.render import print_json
from drosweep.select_args import add_selection_arguments, selection_from
from jobs.commands import study_command


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
                                   "a manifest.csv (key, file, sha256, spec), a .json card beside "
                                   "each model and a manifest.json: what a model needs on raw "
                                   "rows (features, mean/std, classes, architecture, "
                                   "fingerprints; recipe in jobs/export.py).")
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
          f"{result.dest}; manifest {result.manifest} and {result.manifest_json} (features, "
          f"scaling, classes, architecture; a .json card beside each model)")
    if result.not_done:
        print(f"not exported: {len(result.not_done)} trial(s) not done "
              f"(e.g. {result.not_done[0]}); run "
              f"`{study_command('export', study, '--to', str(result.dest))}` again when they are")
    return 0


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

    if args.root is not None and args.study is not None and "/trial_" in args.study \
            and not Path(args.study).exists():  # `cancel --root DIR KEY...`: no study file
        args.keys, args.study = [args.study, *args.keys], None
    study = study_from_args(args)
    result = cancel(study, selection_from(args, study))
    if args.json:
        print_json({"study": study.name, "job_ids": list(result.job_ids),
                    "pids": list(result.pids), "keys": list(result.keys),
                    "dequeued": list(result.dequeued), "unreachable": list(result.unreachable)})
        return 0
    what = []
    if result.job_ids:
        what.append(f"{len(result.job_ids)} SLURM task(s) ({_short(result.job_ids)})")
    if result.pids:
        what.append(f"{len(result.pids)} local process(es) (pid {_short(map(str, result.pids))})")
    if result.dequeued:
        what.append(f"{len(result.dequeued)} queued local trial(s)")
    how = "stop" if len(result.dequeued) == len(result.keys) else "checkpoint and stop"
    print(f"cancelled {' and '.join(what)}: {len(result.keys)} trial(s) {how} "
          f"({_short(result.keys)}); the rest of the run trains on; "
          f"`{study_command('resume', study)}` trains them on")
    if result.unreachable:
        print(f"not stopped: {len(result.unreachable)} trial(s) train on another host outside "
              f"SLURM: {_short(result.unreachable)}")
    return 0


def _short(items: Any, n: int = 6) -> str:
    values = list(items)
    more = f", ... (+{len(values) - n})" if len(values) > n else ""
    return ", ".join(values[:n]) + more
