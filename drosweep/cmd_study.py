"""`drosweep plan | submit | status | resume STUDY.toml`: a study on SLURM, locally or in-process."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cluster.executors import EXECUTORS
from drosweep.args import add_study_arguments, study_from_args
from drosweep.render import (
    format_plan,
    format_status,
    format_verify,
    plan_json,
    print_detailed,
    print_json,
    print_submission,
)
from drosweep.select_args import (
    add_selection_arguments,
    add_state_argument,
    selection_from,
    subset_from,
)
from jobs import Study, expand


def register(sub: Any) -> None:
    p = sub.add_parser("plan", help="show how a study would be packed into tasks and arrays",
                       description="Plan a study: arrays, tasks, trials per task, estimated "
                                   "GPU-hours per method and radius. Submits nothing.")
    add_study_arguments(p)
    _add_calibration(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_plan)

    for name, fn, text in (
            ("submit", run_submit, "submit every trial not done and not queued"),
            ("resume", run_resume, "resubmit the trials with no DONE marker and no live job")):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_study_arguments(p)
        p.add_argument("--executor", default="slurm" if name == "submit" else None,
                       choices=sorted(EXECUTORS),
                       help="slurm: job arrays (returns at once); local: this machine; "
                            "debug: in this process (pdb on errors). Default: "
                            + ("slurm" if name == "submit" else
                               "the executor of the root's last submission, else slurm"))
        p.add_argument("--dry-run", action="store_true", help="plan only: write and submit nothing")
        p.add_argument("--device", default=None, choices=["auto", "cuda", "cpu"],
                       help="torch device of the tasks (default: cluster.device of the study)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        _add_calibration(p)
        add_selection_arguments(p)
        p.add_argument("-n", type=int, default=None, metavar="N", dest="limit",
                       help="at most N trials (the first in study order)")
        p.add_argument("--json", action="store_true",
                       help="one JSON object (the plan, job ids; with --dry-run the scripts)")
        p.set_defaults(func=fn)

    p = sub.add_parser("status", help="done / running / pending / failed / missing per method "
                                      "and radius, with an ETA",
                       description="Where a study stands: markers first, then one sacct call.")
    add_study_arguments(p)
    p.add_argument("--json", action="store_true",
                   help="one JSON object; `counts` maps each state to the study's total")
    p.add_argument("-v", "--detailed", action="store_true",
                   help="one line per trial not done: state, job, host, steps, error")
    add_selection_arguments(p)
    add_state_argument(p)
    p.add_argument("--verify", action="store_true",
                   help="also hash every DONE trial's model file against its marker (exit code "
                        "1 when one does not match)")
    p.set_defaults(func=run_status)


def _add_calibration(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="measured rates to estimate with where the study has no finished "
                        "trials (default: cluster.calibration, else the shipped file for the "
                        "device model)")


def run_plan(args: argparse.Namespace) -> int:
    from cluster.checks import data_problem
    from cluster.executors.slurm.info import read as read_cluster
    from cluster.plan_context import context
    from cluster.planner import plan

    study = study_from_args(args)
    ctx = context(study, info=read_cluster(), calibration=args.calibration)
    the_plan = plan(expand(study), ctx.profile, ctx.rates)
    missing = data_problem(study)
    if args.json:
        out = plan_json(the_plan, study.name)
        out["cluster_problems"] = list(ctx.problems)
        out["data_problem"] = missing
        print_json(out)
    else:
        print(format_plan(the_plan, study.name))
        for problem in ctx.problems:
            print(f"cluster: {problem} (submit refuses this)")
        if missing is not None:
            print(f"data: {missing} (submit refuses this)")
    return 0


def _then(study: Study) -> Callable[[str], Any] | None:
    """The study's `chain_reduce`: reduce and report once the training has ended."""
    if not study.chain_reduce:
        return None
    from pipeline import reduce_and_report

    return reduce_and_report


def run_submit(args: argparse.Namespace) -> int:
    from cluster.submission import submit

    study = study_from_args(args)
    result = submit(study, args.executor, dry_run=args.dry_run, progress=not args.no_progress,
                    device=args.device, then=_then(study), calibration=args.calibration,
                    **subset_from(args, study))
    return print_submission(result, str(study.root), study, args.json)


def run_resume(args: argparse.Namespace) -> int:
    from cluster.submission import resume

    study = study_from_args(args)
    result = resume(study, args.executor, dry_run=args.dry_run, progress=not args.no_progress,
                    device=args.device, then=_then(study), calibration=args.calibration,
                    **subset_from(args, study))
    return print_submission(result, str(study.root), study, args.json)


def run_status(args: argparse.Namespace) -> int:
    from cluster.status import study_status, verify_study  # the executors, when it runs

    study = study_from_args(args)
    specs = expand(study)  # once: the selection is checked against it and the status built on it
    selection = selection_from(args, study, specs)
    status = study_status(study, specs=specs)
    report = verify_study(study) if args.verify else None
    if args.detailed or args.state:
        code = print_detailed(status, selection, args.state, args.json)
        if report is not None:
            print(format_verify(report, study))
        return code if report is None or report.ok else 1
    if not selection.everything:  # a filter narrows the view; -v or --state switch it
        status = status.narrowed(selection.matches)
    if args.json:
        out = status.to_json()
        if report is not None:
            out["verify"] = {"checked": report.checked,
                             "problems": [{"key": k, "detail": d} for k, d in report.problems]}
        print_json(out)
    else:
        print(format_status(status, study))
        if report is not None:
            print(format_verify(report, study))
    return 0 if report is None or report.ok else 1


__all__ = ["register"]
