"""`drosweep reduce | plot | report | demo`: from trained models to the table, figures and report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from drosweep.args import add_study_arguments, study_from_args
from drosweep.render import add_json_argument, print_json, render_json, summary_json
from jobs import load_study
from pipeline import demos, render_study, report_lines, run_reduction, summary_lines
from plots import ClaimSettings, RenderResult, ResultsError
from reduce import ReduceError, ReduceOptions, ReduceSummary

REPO = Path(__file__).resolve().parents[1]
SMOKE_STUDY = REPO / "studies" / "smoke.toml"
MOONS_STUDY = REPO / "studies" / "moons.toml"
DEMO_STUDIES = (SMOKE_STUDY, MOONS_STUDY)  # the pipeline on Avila, then an effect one can see


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
    p.add_argument("--failed-below", type=float, default=None, metavar="ACC",
                   help="flag a training as failed when its clean accuracy is below ACC "
                        "(default: the paper's 0.12, or chance level 1/classes where that is "
                        "higher: 0.5 for 2 classes)")
    p.add_argument("--models-per-task", type=int, default=16,
                   help="slurm: models evaluated by one array task")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_json_argument(p, "print one JSON object (progress bars stay on stderr)")
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
            p.add_argument("--learnt-floor", type=float, default=None, metavar="ACC",
                           help="claims on models whose median clean accuracy is below this "
                                "are INCONCLUSIVE (default: halfway from chance to 1)")
            add_json_argument(p)
        p.set_defaults(func=fn)

    p = sub.add_parser("demo", help="the small studies end to end on this machine: train, "
                                    "reduce, plot, report",
                       description="Run studies/smoke.toml (Avila) and studies/moons.toml (2-D) "
                                   "with the local executor (minutes on 2 CPU cores) and print "
                                   "their claim checks and where the figures and reports are.")
    p.add_argument("--root", default=None,
                   help="where the studies go: DIR/smoke and DIR/moons (default: runs/smoke and "
                        "runs/moons); with --study, the study's root itself")
    p.add_argument("--data-dir", default=None,
                   help="data folder (default: $DROSWEEP_DATA_DIR, else the user cache)")
    p.add_argument("--study", default=None,
                   help="run this study file alone instead (e.g. studies/moons.toml)")
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
    if args.failed_below is not None and not 0 <= args.failed_below <= 1:
        raise ReduceError(f"--failed-below must be in [0, 1], got {args.failed_below:g}")
    return ReduceOptions(wait=args.wait, timeout_s=args.timeout, poll_s=args.poll,
                         partial=args.partial, failed_threshold=args.failed_below,
                         device=args.device, data_dir=args.data_dir,
                         models_per_task=args.models_per_task, progress=not args.no_progress)


def print_summary(summary: ReduceSummary) -> None:
    for line in summary_lines(summary):
        print(line)


def run_reduce(args: argparse.Namespace) -> int:
    study = study_from_args(args)
    summary = run_reduction(study, _options(args), args.executor)
    if args.json:
        print_json(summary_json(summary))
    else:
        print_summary(summary)
    return 1 if summary.errors else 0


# ---------------------------------------------------------------------------- plot, report


def _render(args: argparse.Namespace, with_report: bool) -> RenderResult:
    study = study_from_args(args)
    claims = ClaimSettings(clean_margin=getattr(args, "clean_margin", ClaimSettings.clean_margin),
                           learnt_floor=getattr(args, "learnt_floor", None))
    try:
        return render_study(study, report=with_report, include_failed=args.include_failed,
                            claim_settings=claims)
    except ResultsError as exc:
        raise ReduceError(str(exc)) from None


def run_plot(args: argparse.Namespace) -> int:
    result = _render(args, with_report=False)
    print(f"{len(result.figures)} figure files in {result.figures[0].parent}")
    return 0


def print_report(result: RenderResult) -> None:
    for line in report_lines(result):
        print(line)


def run_report(args: argparse.Namespace) -> int:
    result = _render(args, with_report=True)
    if args.json:
        print_json(render_json(result))
    else:
        print_report(result)
    return 0


# ------------------------------------------------------------------------------------ demo


def run_demo(args: argparse.Namespace) -> int:
    if args.study is not None:
        studies = [load_study(args.study, root=args.root)]
    else:
        studies = [load_study(path) for path in DEMO_STUDIES]
        if args.root is not None:
            studies = [load_study(path, root=Path(args.root) / study.name)
                       for path, study in zip(DEMO_STUDIES, studies, strict=True)]
    results = demos(studies, args.data_dir, progress=not args.no_progress)
    return 0 if all(r.ok for r in results) else 1
