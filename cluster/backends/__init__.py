"""The backends, by the name `--executor` gives: slurm (job arrays), local (this machine) and debug
(in-process), all via submitit. This is the one registry; each backend owns its whole lifecycle
(`base.Backend`). Light on import: submitit loads when a backend submits."""

from __future__ import annotations

from cluster.backends.base import Backend
from cluster.backends.debug import DebugBackend
from cluster.backends.local import LocalBackend
from cluster.backends.slurm import SlurmBackend
from cluster.errors import ClusterError
from jobs.paths import Paths
from jobs.study import Study

BACKENDS: dict[str, type[Backend]] = {cls.name: cls
                                      for cls in (SlurmBackend, LocalBackend, DebugBackend)}


def get_backend(name: str, study: Study, paths: Paths) -> Backend:
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ClusterError(f"unknown executor {name!r}; choose from "
                           f"{', '.join(BACKENDS)}") from None
    return cls(study, paths)


def tracks_jobs(name: str) -> bool:
    """Whether the backend `name` (from the ledger) has a scheduler that knows its jobs' states;
    an unknown name has none."""
    cls = BACKENDS.get(name)
    return cls is not None and cls.tracks_jobs


__all__ = ["BACKENDS", "Backend", "DebugBackend", "LocalBackend", "SlurmBackend", "get_backend",
           "tracks_jobs"]
