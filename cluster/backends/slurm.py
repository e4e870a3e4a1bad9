"""SLURM: each plan array becomes one job array (`executor.batch()`), throttled, requeueable."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import submitit

from cluster.backends.base import Backend
from cluster.errors import ClusterError
from cluster.task import TrainTask
from jobs.task import TaskPack

REQUIRED_TOOLS = ("sbatch", "srun", "sacct", "scancel")


@contextlib.contextmanager
def _sbatch_stderr() -> Iterator[list[str]]:
    """Keep sbatch's message (submitit echoes it to sys.stderr) out of the terminal: it goes
    into the one-line error instead."""
    sink = io.StringIO()
    captured: list[str] = []
    try:
        with contextlib.redirect_stderr(sink):
            yield captured
    finally:
        captured.extend(sink.getvalue().splitlines())


def _refusal(what: str, exc: Exception, stderr: list[str]) -> ClusterError:
    lines = [ln.strip() for ln in stderr + str(exc).strip().splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "error" in ln.lower()),
                  lines[-1] if lines else type(exc).__name__)
    return ClusterError(f"sbatch refused {what}: {detail}")


class SlurmBackend(Backend):
    name = "slurm"

    def check(self) -> None:
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if missing:
            raise ClusterError(f"{', '.join(missing)} not found on PATH: the slurm executor "
                               f"needs a SLURM login node (or use --executor local)")

    def executor(self, size: int) -> submitit.SlurmExecutor:
        p = self.study.cluster
        ex = submitit.SlurmExecutor(folder=self.paths.logs / "%j", max_num_timeout=p.max_requeue,
                                    python=shlex.quote(sys.executable))  # a path with spaces
        params: dict[str, object] = {
            "job_name": f"drosweep-{self.study.name}",
            "time": p.time_limit_min,
            "cpus_per_task": p.cpus_per_task,
            "mem": f"{max(1, round(p.mem_gb * 1024))}MB",
            "signal_delay_s": p.signal_delay_s,
            "array_parallelism": min(p.array_parallelism, max(size, 1)),
            "stderr_to_stdout": True,
        }
        if p.gpus_per_task > 0:
            params["gpus_per_node"] = p.gpus_per_task
        for name in ("partition", "account", "qos", "constraint"):
            value = getattr(p, name)
            if value:
                params[name] = value
        if p.setup:
            params["setup"] = list(p.setup)
        if p.sbatch_extra:
            params["additional_parameters"] = dict(p.sbatch_extra)
        ex.update_parameters(**params)
        return ex

    def submit(self, packs: Sequence[TaskPack]) -> list[str]:
        ex = self.executor(len(packs))
        with _sbatch_stderr() as stderr:
            try:
                with ex.batch():
                    jobs = [ex.submit(TrainTask(pack)) for pack in packs]
            except Exception as exc:  # sbatch refused (partition, GRES, account, ...)
                error = exc
            else:
                return [job.job_id for job in jobs]
        raise _refusal("the array", error, stderr) from None

    def submit_after(self, fn: Callable[..., Any], args: Sequence[Any],
                     after: Sequence[str]) -> str:
        """One job that starts once every array in `after` has ended (`afterany`)."""
        ex = self.executor(1)
        ex.update_parameters(job_name=f"drosweep-{self.study.name}-after",
                             dependency="afterany:" + ":".join(after))
        with _sbatch_stderr() as stderr:
            try:
                job = ex.submit(fn, *args)
            except Exception as exc:
                error = exc
            else:
                return str(job.job_id)
        raise _refusal("the chained job", error, stderr) from None
