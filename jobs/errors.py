"""Bad study input: the CLI prints the message as one line and exits with code 2."""

from __future__ import annotations

from common.errors import InputError


class StudyError(InputError, ValueError):
    """A study file, study root or trial key that cannot be used; the message names the file,
    the key and what is allowed."""
