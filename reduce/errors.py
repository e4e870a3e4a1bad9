"""Errors of the reduction (reduce/).

`ReduceError` is bad input (exit code 2 in the CLI): an unknown study, a results table of another
study or a newer format, an incomplete study without `--partial`. `ModelFileError` concerns one
trial only: that trial is recorded as failed-to-reduce and the others go on.
"""

from __future__ import annotations

from common.errors import InputError


class ReduceError(InputError, ValueError):
    """Bad input for the reduction; the message names the file or option and the fix."""


class ModelFileError(RuntimeError):
    """One model file cannot be evaluated (unreadable, not a state_dict, wrong shapes)."""


class WaitTimeout(ReduceError):
    """Waiting for the study's DONE markers ran past its timeout."""
