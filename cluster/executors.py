"""The executors a study runs with, by name: what the parsers offer without loading submitit
(cluster.backends.BACKENDS implements each under the same name)."""

from __future__ import annotations

EXECUTORS = ("slurm", "local", "debug")
