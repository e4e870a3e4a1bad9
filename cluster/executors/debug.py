"""Debug: the tasks run in this process, one after the other (pdb.post_mortem on an error)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.executors.blocking import BlockingExecutor

if TYPE_CHECKING:
    import submitit


class DebugExecutor(BlockingExecutor):
    name = "debug"
    reraise = True
    trainer_progress = True

    def submitit_executor(self, job_id: str) -> submitit.Executor:
        import submitit

        return submitit.DebugExecutor(folder=self.paths.logs / "debug" / job_id)
