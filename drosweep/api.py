"""drosweep from Python (a notebook): load a study, plan it, submit it, read its status and its
results, with the objects the CLI prints. The CLI and these calls share one code path.

    import drosweep
    study = drosweep.load("studies/smoke.toml", overrides=["training.epochs=2"])
    print(drosweep.plan(study, executor="local").tasks[:3])
    drosweep.submit(study, executor="local")          # trains here; "slurm" submits arrays
    drosweep.status(study).groups                     # done / running / ... per method, radius
    df = drosweep.results(study)                      # one row per model and metric

Errors are the CLI's one-line input errors (`drosweep.errors.input_errors()`), raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the heavy packages load on first use, as in the CLI
    import pandas as pd

    from cluster import Plan, StudyStatus, SubmitResult
    from jobs import Study


def load(path: str | Path | None, *, overrides: Sequence[str] = (),
         root: str | Path | None = None) -> Study:
    """The study file at `path`, with `--set`-style overrides ("training.epochs=2") after those
    its root was submitted with; `path=None`: the study submitted at `root`."""
    from jobs.frozen import load_at_root

    return load_at_root(path, root, overrides)[0]


def plan(study: Study, *, executor: str = "slurm", calibration: str | None = None) -> Plan:
    """How the study's trials pack into tasks and arrays (what `drosweep plan` prints); on
    SLURM it reads the cluster (`sinfo`, `scontrol`) as the CLI does."""
    from cluster.executors import get_executor
    from cluster.plan_context import context
    from cluster.planner import plan as pack
    from jobs import Paths, expand

    info = get_executor(executor, study, Paths(study.root)).cluster_info()
    ctx = context(study, executor, info=info, calibration=calibration)
    return pack(expand(study), ctx.profile, ctx.rates)


def submit(study: Study, executor: str = "local", *, device: str | None = None,
           dry_run: bool = False, progress: bool = False) -> SubmitResult:
    """Submit every trial not done and not queued (`drosweep submit`); "local" trains here."""
    from cluster import submit as run

    return run(study, executor, dry_run=dry_run, progress=progress, device=device)


def status(study: Study) -> StudyStatus:
    """Per trial and per (method, radius): done, running, pending, failed, missing."""
    from cluster import study_status

    return study_status(study)


def results(study: Study) -> pd.DataFrame:
    """The results table (`drosweep reduce` writes it): one row per model and metric."""
    from jobs import Paths
    from plots.results import load_results

    return load_results(Paths(study.root).metrics_parquet)


__all__ = ["load", "plan", "results", "status", "submit"]
