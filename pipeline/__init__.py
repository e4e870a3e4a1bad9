"""A study's results end to end: reduce the trained models, then draw the figures and the report.

This package is the one place that uses `reduce`, `plots` and `cluster` together, which none of
them may do (`plots` reads only the results table, `reduce` never imports the cluster, and the
cluster never imports the reduction). The arrows run CLI → `pipeline` → `cluster`, `reduce`,
`plots` (and `jobs`, `trainers` beneath them); only the CLI imports it, and SLURM runs its
`reduce_and_report` as the job chained after a study's arrays (pickled by reference, so it keeps
its module and name).

API:
- `run_reduction(study, options, executor)`: what `drosweep reduce` does (in this process, or as a
  SLURM job array); `render_study(study, ...)`: figures and report.md from the study's table.
- `reduce_then_render(study, options)`: the one "reduce, then figures and report".
- `reduce_and_report(root, device)`: the chained job; `demo(study, data_dir)`: one study of
  `drosweep demo`, `demos(studies, data_dir)`: each in turn (the demo's studies).
- `summary_lines`, `report_lines`: what the CLI and the jobs print about a reduction and a render.
"""

from pipeline.stages import (
    DEMO_EVALUATION,
    DemoResult,
    demo,
    demos,
    reduce_and_report,
    reduce_then_render,
    render_study,
    report_lines,
    run_reduction,
    summary_lines,
)

__all__ = [
    "DEMO_EVALUATION",
    "DemoResult",
    "demo",
    "demos",
    "reduce_and_report",
    "reduce_then_render",
    "render_study",
    "report_lines",
    "run_reduction",
    "summary_lines",
]
