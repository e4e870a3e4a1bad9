"""`scancel`: cancel SLURM tasks by job id (each checkpoints on the SIGTERM it gets)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

from cluster.errors import ClusterError

ScancelRunner = Callable[[list[str]], None]


def run_scancel(job_ids: list[str]) -> None:
    exe = shutil.which("scancel")
    if exe is None:
        raise ClusterError("scancel not found on PATH: run on a SLURM login node")
    proc = subprocess.run([exe, *job_ids], capture_output=True, text=True, timeout=120,
                          check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise ClusterError(f"scancel failed (exit {proc.returncode}): "
                           f"{lines[-1] if lines else 'no message'}")
