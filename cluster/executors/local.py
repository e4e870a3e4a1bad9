"""Local: the tasks run as processes on this machine (one GPU or the CPU), one at a time by
default, with a progress bar; the debug mode users run before a cluster run."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.executors.blocking import BlockingExecutor
from jobs.paths import Paths
from jobs.study import Study

if TYPE_CHECKING:
    import submitit


def _cuda_count() -> int:
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


@dataclass(frozen=True)
class LocalGpus:
    """What a local task may see. submitit always sets CUDA_VISIBLE_DEVICES in the task (to the
    first `gpus` of `visible`, or "" for none), so a CUDA task must ask for the GPUs this process
    sees; a value that names GPUs otherwise than by index is passed on by a setup line."""

    gpus: int = 0
    visible: tuple[int, ...] = ()
    setup: tuple[str, ...] = ()


def local_gpus(device: str, cuda_count: int, environ: Mapping[str, str]) -> LocalGpus:
    """The GPUs of a local task on `device` ('cpu', 'cuda' or 'auto': CUDA when present)."""
    if device == "cpu" or (device == "auto" and cuda_count == 0):
        return LocalGpus()
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return LocalGpus(gpus=max(cuda_count, 1))
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if ids and all(part.isdigit() for part in ids):
        return LocalGpus(gpus=len(ids), visible=tuple(int(part) for part in ids))
    return LocalGpus(setup=(f"export CUDA_VISIBLE_DEVICES={shlex.quote(value)}",))


class LocalExecutor(BlockingExecutor):
    name = "local"

    def __init__(self, study: Study, paths: Paths) -> None:
        super().__init__(study, paths)
        self.parallelism = study.cluster.local_parallelism

    def _device(self) -> str:
        """The device the queued tasks run on (`--device`, else the study's profile)."""
        devices = {pack.device for _, pack in self._queue}
        return devices.pop() if len(devices) == 1 else self.study.cluster.device

    def submitit_executor(self, job_id: str) -> submitit.Executor:
        import submitit

        p = self.study.cluster
        ex = submitit.LocalExecutor(folder=self.paths.logs / "local" / job_id,
                                    max_num_timeout=p.max_requeue)
        gpus = local_gpus(self._device(), _cuda_count(), os.environ)
        ex.update_parameters(timeout_min=p.time_limit_min, gpus_per_node=gpus.gpus,
                             visible_gpus=gpus.visible, setup=list(gpus.setup),
                             signal_delay_s=min(p.signal_delay_s, 60))
        return ex
