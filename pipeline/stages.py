"""From trained models to the table, figures and report: `drosweep reduce`, the job chained after
a study's arrays, and `drosweep demo`, all through one "reduce, then render".

`cluster` is imported only where an executor, a job array or a submission is asked for (the
executor of `run_reduction` says whether it evaluates in this process), and submitit only where a
job array is submitted.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from jobs import Paths, Study, expand, load_study
from jobs.commands import study_command
from plots import ClaimSettings, RenderResult, ResultsError, render
from reduce import (
    EvalSettings,
    ReduceOptions,
    ReduceSummary,
    chance_for,
    eval_settings_for,
    failed_threshold_for,
    reduce_study,
    settle,
)
from reduce.arrayed import array_mapper
from reduce.reduction import Mapper, in_process

Say = Callable[[str], None]

REDUCE_POLL_S = 15.0  # how often a reduction on SLURM looks at its array's jobs
# what the demo evaluates with when the study file has no [evaluation] table: the metrics of the
# paper on a seeded 500-point test subset, with a shorter Lipschitz search
DEMO_EVALUATION = EvalSettings(test_subset=500, mean_samples=200, ga_generations=100)


def summary_lines(summary: ReduceSummary) -> list[str]:
    lines = [f"results: {summary.parquet} ({summary.rows} rows; {summary.evaluated} model(s) "
             f"evaluated, {summary.reused} unchanged) in {summary.wall_s:.1f}s"]
    lines.extend(f"not reduced {key}: {reason}" for key, reason in summary.errors)
    if summary.failed_training:
        lines.append(f"{len(summary.failed_training)} failed training(s) flagged (kept in the "
                     f"table, excluded from the figures by default)")
    if summary.missing or summary.failed:
        lines.append(f"partial: {len(summary.missing)} trial(s) not finished, "
                     f"{len(summary.failed)} failed in training")
    return lines


def report_lines(result: RenderResult) -> list[str]:
    lines = [claim.line() for claim in result.claims]
    lines.append(f"report: {result.report}")
    if result.figures:
        lines.append(f"figures: {result.figures[0].parent}")
    return lines


def _say_all(say: Say, lines: Sequence[str]) -> None:
    for line in lines:
        say(line)


# ---------------------------------------------------------------------------------- reduce


def run_reduction(study: Study, options: ReduceOptions, executor: str = "local") -> ReduceSummary:
    """Wait (`options.wait`), then evaluate in this process (local, debug) or as one SLURM job
    array (slurm). Bad evaluation settings and an unusable executor fail before the wait."""
    settings = eval_settings_for(study)
    mapper = _mapper(study, executor)
    scan = settle(study, options)
    return reduce_study(study, options, settings, mapper=mapper, scan=scan)


def _mapper(study: Study, executor: str, poll_s: float = REDUCE_POLL_S) -> Mapper:
    """Evaluation tasks in this process with a blocking executor (local, debug), else as one job
    array of the executor's scheduler, configured like the study's training arrays."""
    from cluster.executors import get_executor

    chosen = get_executor(executor, study, Paths(study.root))
    if chosen.blocking:
        return in_process
    chosen.check()
    job_name = f"drosweep-reduce-{study.name}"
    return array_mapper(lambda fn, tasks: chosen.map_array(fn, tasks, job_name=job_name,
                                                            poll_s=poll_s))


# ---------------------------------------------------------------------- reduce, then render


def render_study(study: Study, *, report: bool = True, include_failed: bool = False,
                 claim_settings: ClaimSettings | None = None,
                 threshold: float | None = None) -> RenderResult:
    """Figures (and with `report`, report.md) from the study's results table; `ResultsError`
    when there is no table or nothing in it to draw. The claims' learnt floor follows the data
    set's chance level unless the settings give one."""
    paths = Paths(study.root)
    if not paths.metrics_parquet.exists():  # the command that writes it, to paste
        raise ResultsError(f"{paths.metrics_parquet}: no results table; run "
                           f"`{study_command('reduce', study)}` first")
    claim_settings = claim_settings or ClaimSettings()
    if claim_settings.chance is None:
        claim_settings = replace(claim_settings, chance=chance_for(study))
    return render(paths.metrics_parquet, paths.figures, paths.report if report else None,
                  study_text=study.text, include_failed=include_failed,
                  claim_settings=claim_settings, threshold=threshold)


def reduce_then_render(study: Study, options: ReduceOptions,
                       settings: EvalSettings | None = None, *, say: Say = print,
                       before_render: str | None = None) -> tuple[ReduceSummary, RenderResult]:
    """Reduce (in this process), then figures and report, saying each one's lines. A table with
    nothing to draw raises `ResultsError` once the reduction is written and said."""
    summary = reduce_study(study, options, settings)
    _say_all(say, summary_lines(summary))
    if before_render is not None:
        say(before_render)
    threshold = failed_threshold_for(study, options.failed_threshold)
    rendered = render_study(study, threshold=threshold)
    _say_all(say, report_lines(rendered))
    return summary, rendered


def reduce_and_report(root: str, device: str = "auto") -> str:
    """The job chained after a study's training arrays (SLURM `afterany`; in-process after a
    local run): reduce what finished (partial), then figures and report. Returns the report's
    path, or the table's when nothing could be drawn. Picklable by reference, for a submitit
    job."""
    paths = Paths(root)
    study = load_study(paths.study_file, root=root)
    options = ReduceOptions(partial=True, device=device, progress=False)
    try:
        _, rendered = reduce_then_render(study, options)
    except ResultsError as exc:  # no trial finished: nothing to draw
        print(f"no figures: {exc}")
        return str(paths.metrics_parquet)
    return str(rendered.report)


# ------------------------------------------------------------------------------------ demo


@dataclass(frozen=True)
class DemoResult:
    training_errors: tuple[str, ...]  # one line per failed training task
    summary: ReduceSummary
    rendered: RenderResult

    @property
    def ok(self) -> bool:
        return not self.training_errors and not self.summary.errors


def demos(studies: Sequence[Study], data_dir: str | None = None, *, progress: bool = True,
          say: Say = print) -> list[DemoResult]:
    """`demo` of each study in turn (the main job: the Avila smoke study for the pipeline, then
    the 2-D study whose claims show an effect), then one line of their claims and time."""
    start = time.monotonic()
    results = []
    for i, study in enumerate(studies, 1):
        if len(studies) > 1:
            say(f"== study {i} of {len(studies)}: {study.name} ({study.source})")
        results.append(demo(study, data_dir, progress=progress, say=say))
    if len(studies) > 1:
        for study, result in zip(studies, results, strict=True):
            counts = Counter(c.verdict.value for c in result.rendered.claims)
            say(f"{study.name}: claims {', '.join(f'{n} {v}' for v, n in sorted(counts.items()))}"
                f"; report {result.rendered.report}")
        say(f"all {len(studies)} studies finished in {time.monotonic() - start:.0f}s")
    return results


def demo(study: Study, data_dir: str | None = None, *, progress: bool = True,
         say: Say = print) -> DemoResult:
    """Train `study` with the local executor, then reduce, figures and report, saying each
    step; the study's `[evaluation]` table, else `DEMO_EVALUATION`."""
    from cluster import submit
    from cluster.checks import check_data

    start = time.monotonic()
    settings = eval_settings_for(study) if study.evaluation else DEMO_EVALUATION
    folder = check_data(study, data_dir)
    if folder is not None:
        study = dataclasses.replace(study, data_dir=Path(folder))
        os.environ["DROSWEEP_DATA_DIR"] = str(folder)  # for the local task processes
    n_trials = len(expand(study))
    say(f"[1/3] training study {study.name!r}: {n_trials} trials with the local executor "
        f"into {study.root}")
    result = submit(study, "local", progress=progress)
    _say_all(say, result.errors)
    say(f"      trained in {time.monotonic() - start:.0f}s")
    say("[2/3] evaluating the trained models")
    options = ReduceOptions(partial=True, progress=progress, device="auto",
                            data_dir=str(folder) if folder else None)
    summary, rendered = reduce_then_render(study, options, settings, say=say,
                                           before_render="[3/3] figures and report")
    say(f"demo finished in {time.monotonic() - start:.0f}s")
    return DemoResult(tuple(result.errors), summary, rendered)
