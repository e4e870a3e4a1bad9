"""Arguments that name a subset of a study's trials, shared by status, submit, resume, cancel."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from cluster.select import Selection, make_selection
from cluster.state_enums import TrialState
from drosweep.errors import UsageError
from jobs.grid import TrialSpec
from jobs.study import Study


def add_selection_arguments(p: argparse.ArgumentParser, *, trials: bool = True) -> None:
    p.add_argument("--method", action="append", default=[], metavar="M",
                   help="only this method (repeatable)")
    p.add_argument("--radius", action="append", default=[], type=float, metavar="R",
                   help="only this training radius (repeatable; 0: `regular` trained once)")
    if trials:
        p.add_argument("--trials", default=None, metavar="I",
                       help="only these trial indices, e.g. 0-4,7")


def selection_from(args: argparse.Namespace, study: Study,
                   specs: Sequence[TrialSpec] | None = None) -> Selection:
    return make_selection(study, methods=args.method, radii=args.radius,
                          trials=getattr(args, "trials", None),
                          keys=getattr(args, "keys", None) or (), specs=specs)


def subset_from(args: argparse.Namespace, study: Study) -> dict[str, Any]:
    """`submit`/`resume` keyword arguments: the selection and `-n`."""
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"-n must be >= 1, got {args.limit}")
    return {"selection": selection_from(args, study), "limit": args.limit}


def add_state_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", action="append", default=[], choices=[s.value for s in TrialState],
                   help="only trials in this state (repeatable; default: every state but done)")
