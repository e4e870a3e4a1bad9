"""Executors: slurm (job arrays), local (this machine) and debug (in-process), all via submitit."""

from __future__ import annotations

from cluster.backends.base import Backend
from cluster.backends.debug import DebugBackend
from cluster.backends.local import LocalBackend
from cluster.backends.slurm import SlurmBackend
from cluster.errors import ClusterError
from jobs.paths import Paths
from jobs.study import Study

BACKENDS: dict[str, type[Backend]] = {"slurm": SlurmBackend, "local": LocalBackend,
                                      "debug": DebugBackend}


def get_backend(name: str, study: Study, paths: Paths) -> Backend:
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ClusterError(f"unknown executor {name!r}; choose from "
                           f"{', '.join(BACKENDS)}") from None
    return cls(study, paths)


__all__ = ["BACKENDS", "Backend", "DebugBackend", "LocalBackend", "SlurmBackend", "get_backend"]
