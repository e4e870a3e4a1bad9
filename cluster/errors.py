"""Bad cluster input: the CLI prints the message as one line and exits with code 2."""

from __future__ import annotations

from common.errors import InputError


class ClusterError(InputError, RuntimeError):
    """The scheduler cannot be used as asked (sbatch missing, sacct failing, a study that does
    not fit the cluster); the message says what and how to fix it."""
