"""SLURM: each plan array becomes one job array (`executor.batch()`), throttled, requeueable;
its jobs' states from `sacct`, cancelled with `scancel`, their logs where submitit writes them."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.concurrency import ArrayOptions
from cluster.errors import ClusterError
from cluster.executors.base import Executor
from cluster.executors.slurm import info as slurm_info
from cluster.executors.slurm.sacct import SacctRunner, job_states, run_sacct
from cluster.executors.slurm.scancel import ScancelRunner, run_scancel
from cluster.executors.submitit_api import sbatch_script
from cluster.state_enums import JobState
from jobs.pack import TaskPack
from jobs.sbatch import check_sbatch_extra

if TYPE_CHECKING:
    import submitit

    from jobs.study import ClusterProfile

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


class SlurmExecutor(Executor):
    name = "slurm"
    tracks_jobs = True

    def check(self) -> None:
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if missing:
            raise ClusterError(f"{', '.join(missing)} not found on PATH: the slurm executor "
                               f"needs a SLURM login node (or use --executor local)")

    def check_settings(self) -> None:
        check_sbatch_extra(self.study.cluster.sbatch_extra)

    def cluster_info(self) -> slurm_info.SlurmInfo | None:
        return slurm_info.read()

    def device_model(self, profile: ClusterProfile, info: slurm_info.SlurmInfo | None,
                     device: str | None = None) -> str | None:
        if profile.device_model:
            return profile.device_model
        if (device or profile.device) == "cpu":
            return None
        return slurm_info.gres_model(profile, info)

    def scripts(self, sizes: Sequence[int], options: Sequence[ArrayOptions]
                ) -> tuple[str, ...] | None:
        return tuple(self.script(size, o) for size, o in zip(sizes, options, strict=True))

    def job_states(self, array_ids: Iterable[str], runner: Any = None) -> dict[str, JobState]:
        sacct: SacctRunner = run_sacct if runner is None else runner
        return job_states(array_ids, sacct)

    def cancel_jobs(self, job_ids: Sequence[str], runner: Any = None) -> None:
        scancel: ScancelRunner = run_scancel if runner is None else runner
        scancel(list(job_ids))

    def log_files(self, job_id: str) -> list[Path]:
        from submitit.core.utils import JobPaths

        job = JobPaths(self.paths.logs / "%j", job_id=job_id, task_id=0)
        return [p for p in (job.stdout, job.stderr) if p.is_file()]

    def submitit_executor(self, size: int, options: ArrayOptions | None = None) -> submitit.SlurmExecutor:
        import submitit

        p = self.study.cluster
        if options is None:
            options = ArrayOptions(p.time_limit_min, p.max_running)
        ex = submitit.SlurmExecutor(folder=self.paths.logs / "%j", max_num_timeout=p.max_requeue,
                                    python=shlex.quote(sys.executable))  # a path with spaces
        params: dict[str, object] = {
            "job_name": f"drosweep-{self.study.name}",
            "time": options.time_limit_min,
            "cpus_per_task": p.cpus_per_task,
            "mem": f"{max(1, round(p.mem_gb * 1024))}MB",
            "signal_delay_s": p.signal_delay_s,
            "array_parallelism": min(options.max_running, max(size, 1)),
            "stderr_to_stdout": True,
        }
        if p.gpus_per_task > 0:
            params["gpus_per_node"] = (f"{p.gpu_type}:{p.gpus_per_task}" if p.gpu_type
                                       else p.gpus_per_task)
        if options.after:
            params["dependency"] = "afterany:" + ":".join(options.after)
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

    def array_executor(self, size: int, job_name: str) -> submitit.Executor:
        ex = self.submitit_executor(size)
        ex.update_parameters(job_name=job_name)
        return ex

    def script(self, size: int, options: ArrayOptions | None = None) -> str:
        """The sbatch script of an array of `size` tasks, exactly as `submit` writes it
        (submitit renders it; nothing is written or submitted)."""
        ex = self.submitit_executor(size, options)
        if size > 1:  # what submitit's batch submission sets on its copy of the executor
            ex.parameters["map_count"] = size
        return sbatch_script(ex)

    def submit(self, packs: Sequence[TaskPack], options: ArrayOptions | None = None) -> list[str]:
        from cluster.preemptible import TrainTask

        ex = self.submitit_executor(len(packs), options)
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
        ex = self.submitit_executor(1)
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
