"""The only module that uses submitit's private names: the script sbatch gets (for the dry-run
preview) and the process of a local job (to stop it with a checkpoint). submitit offers neither
publicly; tests/unit/cluster/test_executor_seam.py fails when a submitit release renames them.

Imports submitit only when a function runs.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import submitit

# (class, attribute): what this module reaches into, for the test
PRIVATE_NAMES = (("submitit.SlurmExecutor", "_make_submission_file_text"),
                 ("submitit.SlurmExecutor", "_submitit_command_str"),
                 ("submitit.local.local.LocalJob", "_process"))


def sbatch_script(executor: submitit.SlurmExecutor) -> str:
    """The sbatch script `executor` would submit, rendered by submitit; nothing is written."""
    return executor._make_submission_file_text(executor._submitit_command_str, "dry-run")


def job_process(job: Any) -> subprocess.Popen[bytes] | None:
    """The process that runs a local submitit job (None for a job of another kind)."""
    process = getattr(job, "_process", None)
    return process if isinstance(process, subprocess.Popen) else None
