"""The base of every refusal of bad input: a study file, a setting, a data set, a cluster that
cannot run what is asked, a full disk. The CLI catches `InputError` by class and prints its
message as one line with exit code 2; each package's own error derives from it (and keeps the
built-in base it had, for callers that catch that)."""

from __future__ import annotations


class InputError(Exception):
    """Bad input; the message names what is wrong and how to fix it."""
