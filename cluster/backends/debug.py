"""Debug: the tasks run in this process, one after the other (pdb.post_mortem on an error)."""

from __future__ import annotations

import submitit

from cluster.backends.base import BlockingBackend


class DebugBackend(BlockingBackend):
    name = "debug"
    reraise = True
    trainer_progress = True

    def executor(self, job_id: str) -> submitit.Executor:
        return submitit.DebugExecutor(folder=self.paths.logs / "debug" / job_id)
