"""The executors, by the name `--executor` gives: slurm (job arrays), local (this machine) and debug
(in-process), all via submitit. This is the one registry; each executor owns its whole lifecycle
(`base.Executor`). Light on import: the parsers read `EXECUTORS` without loading any executor's
module (nor submitit); `executor_class` loads the one asked for."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cluster.errors import ClusterError

if TYPE_CHECKING:
    from cluster.executors.base import Executor
    from jobs.paths import Paths
    from jobs.study import Study

_REGISTRY: dict[str, tuple[str, str]] = {
    "slurm": ("cluster.executors.slurm", "SlurmExecutor"),
    "local": ("cluster.executors.local", "LocalExecutor"),
    "debug": ("cluster.executors.debug", "DebugExecutor"),
}
EXECUTORS: tuple[str, ...] = tuple(_REGISTRY)


def executor_class(name: str) -> type[Executor]:
    try:
        module, cls = _REGISTRY[name]
    except KeyError:
        raise ClusterError(f"unknown executor {name!r}; choose from "
                           f"{', '.join(EXECUTORS)}") from None
    found: type[Executor] = getattr(importlib.import_module(module), cls)
    return found


def get_executor(name: str, study: Study, paths: Paths) -> Executor:
    return executor_class(name)(study, paths)


def tracks_jobs(name: str) -> bool:
    """Whether the executor `name` (from the ledger) has a scheduler that knows its jobs' states;
    an unknown name has none."""
    return name in _REGISTRY and executor_class(name).tracks_jobs


__all__ = ["EXECUTORS", "executor_class", "get_executor", "tracks_jobs"]
