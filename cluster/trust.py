"""Who may write a study root: its owner alone.

Every task unpickles its payload from `<root>/logs/*.pkl` (submitit), so whoever can write the
root or its logs can make the cluster run their code under the submitting user's account. A
submission therefore refuses a root or logs folder that is writable by its group or by everyone,
or owned by another user, naming the fix; the folders a submission creates are made writable by
their owner only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cluster.errors import ClusterError
from jobs.paths import Paths


def trust_problem(folder: Path) -> str | None:
    """Why tasks must not trust `folder` (one line), or None (also when it does not exist)."""
    try:
        st = folder.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{folder}: cannot be checked ({exc.strerror or exc})"
    if st.st_uid != os.getuid():
        return (f"{folder} is owned by uid {st.st_uid}, not by you (uid {os.getuid()}): its "
                f"owner could run code in your tasks (submitit unpickles {folder.name}/logs/*.pkl"
                f" in every task); submit from a root of your own")
    writable = [who for who, bit in (("its group", stat.S_IWGRP), ("everyone", stat.S_IWOTH))
                if st.st_mode & bit]
    if writable:
        return (f"{folder} is writable by {' and '.join(writable)}: whoever can write it runs "
                f"code in your tasks (submitit unpickles the task payloads in the root's logs/); "
                f"run `chmod go-w {folder}`")
    return None


def check_root_trusted(paths: Paths) -> None:
    """Refuse to submit into a root (or logs folder) that others can write."""
    for folder in (paths.root, paths.logs):
        problem = trust_problem(folder)
        if problem is not None:
            raise ClusterError(problem)


def restrict(folder: Path) -> None:
    """Take write access from group and others on a folder this submission created."""
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.chmod(folder, mode & ~(stat.S_IWGRP | stat.S_IWOTH))


__all__ = ["check_root_trusted", "restrict", "trust_problem"]
