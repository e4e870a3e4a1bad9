"""Local: the tasks run as processes on this machine (one GPU or the CPU), one at a time by
default, with a progress bar; the debug mode users run before a cluster run."""

from __future__ import annotations

import submitit

from cluster.backends.base import BlockingBackend
from jobs.paths import Paths
from jobs.study import Study


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


class LocalBackend(BlockingBackend):
    name = "local"

    def __init__(self, study: Study, paths: Paths) -> None:
        super().__init__(study, paths)
        self.parallelism = study.cluster.local_parallelism

    def executor(self, job_id: str) -> submitit.Executor:
        p = self.study.cluster
        ex = submitit.LocalExecutor(folder=self.paths.logs / "local" / job_id,
                                    max_num_timeout=p.max_requeue)
        gpus = 1 if p.gpus_per_task > 0 and p.device != "cpu" and _has_cuda() else 0
        ex.update_parameters(timeout_min=p.time_limit_min, gpus_per_node=gpus,
                             signal_delay_s=min(p.signal_delay_s, 60))
        return ex
