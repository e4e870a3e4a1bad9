"""Evaluation tasks run as a job array: each task's rows, and for a task whose job ended without
any (killed, out of memory, raised) its models as failed-to-reduce rows, so a dead task never
hangs the reduction or loses the others' rows.

The array itself is the caller's (the slurm executor's `map_array`): this package never imports
the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from reduce.eval_tasks import EvalTask, Row, unit_base
from reduce.reduction import Mapper, TaskFn
from reduce.table import error_rows

# `fn` over the tasks as one array: (task index, its rows or the exception its job ended with)
ArrayMap = Callable[[TaskFn, Sequence[EvalTask]], Iterable[tuple[int, list[Row] | Exception]]]


def array_mapper(map_array: ArrayMap, device: str = "slurm") -> Mapper:
    """A mapper for `reduce_study` over `map_array`; `device` is what the error rows name."""

    def mapper(fn: TaskFn, tasks: Sequence[EvalTask]) -> Iterator[list[Row]]:
        for i, outcome in map_array(fn, tasks):
            if not isinstance(outcome, Exception):
                yield outcome
                continue
            task = tasks[i]
            reason = f"evaluation {outcome}"  # "evaluation job <id> failed: <why>"
            yield [row for unit in task.units
                   for row in error_rows(unit.radii, unit_base(unit, task, device), reason)]

    return mapper
