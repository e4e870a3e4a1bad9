"""`drosweep plan | submit | status | resume STUDY.toml`: a study on SLURM, locally or in-process."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cluster.executors import EXECUTORS
from cluster.states import USUAL_STATES, TrialState
from cluster.status import StudyStatus, study_status, verify_study
from drosweep.args import add_study_arguments, study_from_args
from drosweep.cmd_ops import print_detailed, print_scripts, submission_json
from drosweep.jsonout import print_json
from drosweep.select_args import (
    add_selection_arguments,
    add_state_argument,
    selection_from,
    subset_from,
)
from jobs import Study, expand
from jobs.integrity import VerifyReport
from jobs.radius import radius_tag
from trainers.spec import Method

if TYPE_CHECKING:  # submit, resume and plan load the executors (submitit) when they run
    from cluster.planner import Plan
    from cluster.submission import SubmitResult


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
        p.add_argument("--executor", default="slurm", choices=sorted(EXECUTORS),
                       help="slurm: job arrays (returns at once); local: this machine; "
                            "debug: in this process (pdb on errors). Default: slurm")
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


def _hours(h: float) -> str:
    if h < 0.1:
        return f"{h:.3f}"
    return f"{h:.2f}" if h < 10 else f"{h:.0f}" if h >= 1000 else f"{h:.1f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _eps(method: Method, radius: float) -> str:
    return "-" if method is Method.REGULAR and radius == 0 else radius_tag(radius)


def plan_json(the_plan: Plan, name: str) -> dict[str, Any]:
    return {
        "study": name, "trials": len(the_plan.trials), "tasks": len(the_plan.tasks),
        "arrays": [{"index": i, "tasks": len(a.tasks)} for i, a in enumerate(the_plan.arrays)],
        "groups": [{"method": g.method.value, "radius": g.radius, "trials": g.trials,
                    "tasks": g.tasks, "trials_per_task": g.trials_per_task,
                    "hours_per_trial": g.hours_per_trial, "device_hours": g.device_hours,
                    "gpu_hours": g.device_hours * the_plan.profile.gpus_per_task,
                    "source": g.source, "samples": g.samples}
                   for g in the_plan.groups],
        "device_hours": the_plan.device_hours, "gpu_hours": the_plan.gpu_hours,
        "time_limits_min": [a.time_limit_min for a in the_plan.arrays],
        "max_running": the_plan.profile.max_running,
        "warnings": list(the_plan.warnings), "notes": list(the_plan.notes),
    }


def format_plan(the_plan: Plan, name: str) -> str:
    p = the_plan.profile
    unit = "GPU-h" if p.gpus_per_task > 0 else "task-h"
    lines = [f"study {name}: {len(the_plan.trials)} trials -> {len(the_plan.tasks)} tasks in "
             f"{len(the_plan.arrays)} array(s) (max array size {p.array_size_cap}, "
             f"{p.max_running} task(s) of the study at once, {p.time_limit_min} min per task)",
             f"{'method':<12}{'eps':>6}{'trials':>8}{'tasks':>7}{'per task':>10}"
             f"{'h/trial':>9}{unit:>9}  estimate from"]
    for g in the_plan.groups:
        scale = p.gpus_per_task if p.gpus_per_task > 0 else 1
        lines.append(f"{g.method.value:<12}{_eps(g.method, g.radius):>6}{g.trials:>8}"
                     f"{g.tasks:>7}{g.trials_per_task:>10}{_hours(g.hours_per_trial):>9}"
                     f"{_hours(g.device_hours * scale):>9}  {_source(g.source, g.samples)}")
    total = the_plan.gpu_hours if p.gpus_per_task > 0 else the_plan.device_hours
    lines.append(f"{'total':<18}{len(the_plan.trials):>8}{len(the_plan.tasks):>7}"
                 f"{'':>19}{_hours(total):>9}")
    lines.append("arrays: " + ", ".join(f"#{i}: {len(a.tasks)} tasks, {a.time_limit_min} min"
                                        for i, a in enumerate(the_plan.arrays)))
    lines.extend(f"note: {n}" for n in the_plan.notes)
    lines.extend(f"warning: {w}" for w in the_plan.warnings)
    return "\n".join(lines)


def _source(source: str, samples: int) -> str:
    if source == "study":
        return f"study ({samples} trial{'s' if samples != 1 else ''})"
    if source in ("calibration", "calibration, other radii"):
        return f"{source} ({samples} rate{'s' if samples != 1 else ''})"
    return source


def run_plan(args: argparse.Namespace) -> int:
    from cluster.checks import data_problem
    from cluster.planner import plan
    from cluster.planning import context
    from cluster.slurm_info import read as read_cluster

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


def _report_submission(result: SubmitResult, root: str, study: Study | None = None,
                       as_json: bool = False) -> int:
    if as_json and study is not None:
        print_json(submission_json(result, study))
        return 1 if result.errors else 0
    verb = "would submit" if result.dry_run else "submitted"
    if result.changed:
        print(f"{len(result.changed)} done trial(s) whose model file changed since its DONE "
              f"marker are neither counted done nor trained over ({', '.join(result.changed[:3])}"
              f"{', ...' if len(result.changed) > 3 else ''}): run `drosweep status --verify`; "
              f"restore the file, or delete its DONE.json and resume to rewrite it from the "
              f"final checkpoint")
    n = len(result.plan.trials)
    head = (f"{result.already_done} trial(s) done, {result.already_live} queued or running; "
            f"{verb} {n} trial(s)")
    if n == 0:
        print(head + ": nothing to do")
        return 0
    print(head + f" in {len(result.plan.tasks)} task(s)")
    if result.dry_run:
        print(format_plan(result.plan, "(to submit)"))
        if result.executor == "slurm" and study is not None:
            print_scripts(study, result)
        return 0
    if result.executor == "slurm":
        print(f"array(s) {', '.join(result.array_ids)} on SLURM; logs in {root}/logs; "
              f"follow with `drosweep status`")
        if result.chained_job:
            print(f"job {result.chained_job} reduces and reports once the arrays have ended")
        return 0
    for line in result.errors:  # each failed trial: its error, naming the file (stderr)
        print(line, file=sys.stderr)
    print(f"{result.executor} run finished: {len(result.errors)} failure(s), one line each on "
          f"stderr; see `drosweep status` and {root}/logs")
    return 1 if result.errors else 0


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
    return _report_submission(result, str(study.root), study, args.json)


def run_resume(args: argparse.Namespace) -> int:
    from cluster.submission import resume

    study = study_from_args(args)
    result = resume(study, args.executor, dry_run=args.dry_run, progress=not args.no_progress,
                    device=args.device, then=_then(study), calibration=args.calibration,
                    **subset_from(args, study))
    return _report_submission(result, str(study.root), study, args.json)


def format_status(status: StudyStatus) -> str:
    counts = status.counts
    shown = [s for s in TrialState if s in USUAL_STATES or counts[s]]
    lines = [f"study {status.name} at {status.root}: {len(status.trials)} trials; "
             + ", ".join(f"{s.value} {counts[s]}" for s in shown)
             + f"; ETA {_duration(status.eta_s)}",
             f"{'method':<12}{'eps':>6}" + "".join(f"{s.value:>9}" for s in shown)
             + f"{'ETA':>9}"]
    for g in status.groups:
        lines.append(f"{g.method.value:<12}{_eps(g.method, g.radius):>6}"
                     + "".join(f"{g.counts[s]:>9}" for s in shown)
                     + f"{_duration(g.eta_s):>9}")
    failed = [t for t in status.trials if t.state is TrialState.FAILED]
    for t in failed[:20]:
        job = f" (job {t.job_id})" if t.job_id else ""
        lines.append(f"failed {t.trial.key}{job}: {t.detail}")
    if len(failed) > 20:
        lines.append(f"... and {len(failed) - 20} more failed (see --json)")
    changed = [t for t in status.trials if t.state is TrialState.CHANGED]
    for t in changed[:20]:
        lines.append(f"changed {t.trial.key}: {t.detail}")
    if changed:
        lines.append("a changed model is neither counted done nor trained over: `status "
                     "--verify` hashes it; restore it, or delete its DONE.json and run `resume`")
    return "\n".join(lines)


def run_status(args: argparse.Namespace) -> int:
    study = study_from_args(args)
    specs = expand(study)  # once: the selection is checked against it and the status built on it
    selection = selection_from(args, study, specs)
    status = study_status(study, specs=specs)
    report = verify_study(study) if args.verify else None
    if args.detailed or args.state or not selection.everything:
        code = print_detailed(status, selection, args.state, args.json)
        if report is not None:
            print(format_verify(report))
        return code if report is None or report.ok else 1
    if args.json:
        out = status.to_json()
        if report is not None:
            out["verify"] = {"checked": report.checked,
                             "problems": [{"key": k, "detail": d} for k, d in report.problems]}
        print_json(out)
    else:
        print(format_status(status))
        if report is not None:
            print(format_verify(report))
    return 0 if report is None or report.ok else 1


def format_verify(report: VerifyReport) -> str:
    lines = [f"verify: {report.checked} DONE model file(s) hashed, "
             f"{len(report.problems)} not matching their DONE marker"]
    lines.extend(f"corrupt {key}: {detail}" for key, detail in report.problems)
    if report.problems:
        lines.append("a corrupt model is neither evaluated nor trained over: restore it, or "
                     "delete its DONE.json and run `drosweep resume` to rewrite it from the "
                     "final checkpoint")
    return "\n".join(lines)


__all__ = ["format_plan", "format_status", "register"]
