"""What the commands print, as text or as one JSON object (`--json`: nothing else on stdout).

Each command module parses, calls one function of a package and hands its result here; the command
modules never import each other.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.state_enums import USUAL_STATES, TrialState
from jobs.axes import value_tag
from jobs.commands import study_command
from jobs.radius import radius_tag
from trainers.datasets.fingerprint import DATA_CHANGED
from trainers.spec import Method

if TYPE_CHECKING:  # submit, resume and plan load the executors (submitit) when they run
    from cluster.planner import Plan
    from cluster.rates import TrialEstimate
    from cluster.select import Selection
    from cluster.status import StudyStatus
    from cluster.submission import SubmitResult
    from jobs import Study
    from jobs.integrity import VerifyReport
    from plots import RenderResult
    from reduce import ReduceSummary


def add_json_argument(p: argparse.ArgumentParser, text: str = "print one JSON object") -> None:
    p.add_argument("--json", action="store_true", help=text)


def print_json(body: dict[str, Any]) -> None:
    print(json.dumps(body, indent=2))


def summary_json(summary: ReduceSummary) -> dict[str, Any]:
    """`reduce --json`: what `reduce` prints, as fields."""
    return {"parquet": str(summary.parquet), "csv": str(summary.csv), "rows": summary.rows,
            "evaluated": summary.evaluated, "reused": summary.reused,
            "errors": [{"key": key, "reason": reason} for key, reason in summary.errors],
            "failed_training": list(summary.failed_training), "missing": list(summary.missing),
            "failed": list(summary.failed), "wall_s": summary.wall_s}


def render_json(result: RenderResult) -> dict[str, Any]:
    """`report --json`: the claim checks, the report and the figure files."""
    return {"claims": [{"verdict": c.verdict.value, "text": c.text} for c in result.claims],
            "report": str(result.report) if result.report is not None else None,
            "figures": [str(f) for f in result.figures]}


def duration(seconds: float | None) -> str:
    """A time in the unit that reads (`42 s`, `3.5 min`, `2.1 h`): status's ETA and plan's times
    alike, so a short study never shows `0.000` hours nor a long one thousands of seconds."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if 0 < seconds < 0.5:
        return "<1 s"  # not `0 s`, which reads as nothing left
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    if seconds < 3570:  # below what rounds to 59.5 min
        minutes = seconds / 60
        return f"{minutes:.1f} min" if minutes < 9.95 else f"{minutes:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 99.95 else f"{hours:.0f} h"


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
                    "source": g.source, "samples": g.samples,
                    **({"axes": dict(g.axes)} if g.axes else {})}
                   for g in the_plan.groups],
        "device_hours": the_plan.device_hours, "gpu_hours": the_plan.gpu_hours,
        "time_limits_min": [a.time_limit_min for a in the_plan.arrays],
        "max_running": the_plan.profile.max_running,
        "warnings": list(the_plan.warnings), "notes": list(the_plan.notes),
    }


def format_plan(the_plan: Plan, name: str) -> str:
    p = the_plan.profile
    unit = "GPU time" if p.gpus_per_task > 0 else "task time"
    lines = [f"study {name}: {len(the_plan.trials)} trials -> {len(the_plan.tasks)} tasks in "
             f"{len(the_plan.arrays)} array(s) (max array size {p.array_size_cap}, "
             f"{p.max_running} task(s) of the study at once, {p.time_limit_min} min per task)",
             f"{'method':<12}{'eps':>6}{'trials':>8}{'tasks':>7}{'per task':>10}"
             f"{'per trial':>11}{unit:>11}  estimate from"]
    for g in the_plan.groups:
        scale = p.gpus_per_task if p.gpus_per_task > 0 else 1
        lines.append(f"{g.method.value:<12}{_eps(g.method, g.radius):>6}{g.trials:>8}"
                     f"{g.tasks:>7}{g.trials_per_task:>10}{duration(g.hours_per_trial * 3600):>11}"
                     f"{duration(g.device_hours * scale * 3600):>11}  "
                     f"{_source(g.source, g.samples)}"
                     + "".join(f"  {k}={value_tag(v)}" for k, v in g.axes))
    total = the_plan.gpu_hours if p.gpus_per_task > 0 else the_plan.device_hours
    lines.append(f"{'total':<18}{len(the_plan.trials):>8}{len(the_plan.tasks):>7}"
                 f"{'':>21}{duration(total * 3600):>11}")
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


def print_root_overrides(study: Study, applied: Sequence[str]) -> None:
    """The root's recorded overrides a command applied without being given them (stderr)."""
    print(f"drosweep: {study.root} was submitted with --set {' --set '.join(applied)}: "
          f"applied", file=sys.stderr)


def _hint(verb: str, study: Study | None, *extra: str) -> str:
    """A command to paste: complete when the study is known."""
    if study is None:
        return " ".join(["drosweep", verb, *extra])
    return study_command(verb, study, *extra)


def format_train_estimate(est: TrialEstimate) -> str:
    """The line `drosweep train` prints before it starts: time, steps, device, basis."""
    device = est.device_model or "an unknown device"
    took = duration(est.seconds)
    line = (f"estimate: {took if took.startswith('<') else '~' + took} ({est.steps} steps) on "
            f"{device}, from "
            f"{_source(est.source.value, est.samples)}")
    if est.source.value == "built-in":  # a guess: say what it assumes and how to measure
        line += (f" (assumes {est.device_tflops:g} TFLOP/s; `drosweep doctor --out FILE` "
                 f"measures this device, then --calibration FILE)")
    return line


def print_submission(result: SubmitResult, root: str, study: Study | None = None,
                       as_json: bool = False) -> int:
    if as_json and study is not None:
        print_json(submission_json(result, study))
        return 1 if result.errors else 0
    verb = "would submit" if result.dry_run else "submitted"
    if result.changed:
        print(f"{len(result.changed)} done trial(s) whose model file changed since its DONE "
              f"marker are neither counted done nor trained over ({', '.join(result.changed[:3])}"
              f"{', ...' if len(result.changed) > 3 else ''}): run "
              f"`{_hint('status --verify', study)}`; "
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
        if study is not None:
            print_scripts(result)
        return 0
    if not result.blocking:
        print(f"array(s) {', '.join(result.array_ids)} on SLURM; logs in {root}/logs; "
              f"follow with `{_hint('status', study)}`")
        if result.chained_job:
            print(f"job {result.chained_job} reduces and reports once the arrays have ended")
        return 0
    for line in result.errors:  # each failed trial: its error, naming the file (stderr)
        print(line, file=sys.stderr)
    print(f"{result.executor} run finished: {len(result.errors)} failure(s), one line each on "
          f"stderr; see `{_hint('status', study)}` and {root}/logs")
    return 1 if result.errors else 0


def format_status(status: StudyStatus, study: Study | None = None) -> str:
    counts = status.counts
    shown = [s for s in TrialState if s in USUAL_STATES or counts[s]]
    lines = [f"study {status.name} at {status.root}: {len(status.trials)} trials; "
             + ", ".join(f"{s.value} {counts[s]}" for s in shown)
             + f"; ETA {duration(status.eta_s)}",
             f"{'method':<12}{'eps':>6}" + "".join(f"{s.value:>9}" for s in shown)
             + f"{'ETA':>9}"]
    for g in status.groups:
        lines.append(f"{g.method.value:<12}{_eps(g.method, g.radius):>6}"
                     + "".join(f"{g.counts[s]:>9}" for s in shown)
                     + f"{duration(g.eta_s):>9}")
    failed = [t for t in status.trials if t.state is TrialState.FAILED]
    for t in failed[:20]:
        job = f" (job {t.job_id})" if t.job_id else ""
        lines.append(f"failed {t.trial.key}{job}: {t.detail}")
    if len(failed) > 20:
        lines.append(f"... and {len(failed) - 20} more failed (see --json)")
    changed = [t for t in status.trials if t.state is TrialState.CHANGED]
    for t in changed[:20]:
        lines.append(f"changed {t.trial.key}: {t.detail}")
    if any(not t.detail.startswith(DATA_CHANGED) for t in changed):
        lines.append(f"a changed model is neither counted done nor trained over: "
                     f"`{_hint('status --verify', study)}` hashes it; restore it, or delete "
                     f"its DONE.json and run `{_hint('resume', study)}`")
    if any(t.detail.startswith(DATA_CHANGED) for t in changed):
        lines.append(f"changed data: a trial is neither counted done nor trained over; restore "
                     f"the file, or delete the trial's folder under runs/ and run "
                     f"`{_hint('resume', study)}` to train it on the data as it is now")
    return "\n".join(lines)


def format_verify(report: VerifyReport, study: Study | None = None) -> str:
    lines = [f"verify: {report.checked} DONE model file(s) hashed, "
             f"{len(report.problems)} not matching their DONE marker"]
    lines.extend(f"corrupt {key}: {detail}" for key, detail in report.problems)
    if report.problems:
        lines.append(f"a corrupt model is neither evaluated nor trained over: restore it, or "
                     f"delete its DONE.json and run `{_hint('resume', study)}` to rewrite it "
                     f"from the final checkpoint")
    return "\n".join(lines)


def print_detailed(status: StudyStatus, selection: Selection, states: Sequence[str],
                   as_json: bool) -> int:
    from cluster.detail import format_rows, trial_rows

    rows = trial_rows(status, selection=selection, states=[TrialState(s) for s in states])
    if as_json:
        body = status.to_json()
        body["trials"] = [r.to_json() for r in rows]
        print_json(body)
    else:
        print(format_rows(rows))
    return 0


def print_scripts(result: SubmitResult) -> None:
    """The script of each array, exactly as `submit` hands it to the scheduler (an array that
    waits for one not yet submitted names it `<array #i>`); nothing where there is no
    scheduler."""
    scripts = result.scripts()
    if scripts is None:
        return
    for i, (array, script) in enumerate(zip(result.plan.arrays, scripts, strict=True)):
        print(f"# ---- array #{i}: {len(array.tasks)} task(s), sbatch script ----")
        print(script.rstrip())


def submission_json(result: SubmitResult, study: Study) -> dict[str, Any]:
    body: dict[str, Any] = {
        "study": study.name, "executor": result.executor, "dry_run": result.dry_run,
        "already_done": result.already_done, "already_live": result.already_live,
        "trials": [t.key for t in result.plan.trials], "plan": plan_json(result.plan, study.name),
        "job_ids": list(result.job_ids), "array_ids": list(result.array_ids),
        "chained_job": result.chained_job, "errors": list(result.errors)}
    scripts = result.scripts() if result.dry_run else None
    if scripts is not None:
        body["scripts"] = list(scripts)
    return body


def format_new(path: Path) -> str:
    """What `drosweep new` says: where the template went and what to do next."""
    return (f"wrote {path}: every key of a study with its default and doc; set name, root, "
            f"methods, radii and trials, then `drosweep plan {path}`")
