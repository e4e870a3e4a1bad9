"""The `drosweep` command line that reaches a study again, for the hints messages print.

A hint is pasted as is: it names the study file as it was given and adds `--root DIR` when the
root is not the file's own; a study read from its root alone (`--root DIR`, no file) is named by
its root. The root's `--set` overrides need no repeating (`jobs.frozen.load_at_root`).
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

from jobs.paths import Paths
from jobs.study import Study


def study_command(verb: str, study: Study, *extra: str) -> str:
    """`drosweep VERB STUDY [--root DIR] EXTRA...`, quoted for a POSIX shell."""
    root = str(study.root)
    if Path(study.source).expanduser().absolute() == Paths(study.root).study_file:
        words = [*verb.split(), "--root", root]
    else:
        words = [*verb.split(), str(study.source)]
        if _file_root(study) != study.root:
            words += ["--root", root]
    return "drosweep " + shlex.join([*words, *extra])


def _file_root(study: Study) -> Path | None:
    """The root the study file names by itself (None when only --root gives one)."""
    try:
        root = tomllib.loads(study.text).get("root")
    except tomllib.TOMLDecodeError:
        return None
    return Path(root).expanduser().absolute() if isinstance(root, str) else None
