"""One process trains a trial at a time: an exclusive lock beside its checkpoint.

Holding the lock proves that no other process writes the trial's files, so temp files left by a
killed write can go at once, whatever their age (`common.atomic.remove_stale_temps` without the
age test), instead of surviving a restart within a minute. The lock is `flock` on
`.<checkpoint name>.lock`: the kernel drops it when its process dies (kill -9 included), so a
left lock file never blocks; the holder removes the file when it is done, and folders it had to
create for the lock are removed again when nothing else was written into them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from common.atomic import StorageError
from trainers.spec import SpecError


class TrialBusyError(SpecError):
    """Another live process holds the trial (bad input: the same trial started twice)."""


def lock_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(f".{checkpoint.name}.lock")


def _first_missing(folder: Path) -> Path | None:
    missing = None
    while not folder.exists() and folder != folder.parent:
        missing, folder = folder, folder.parent
    return missing


def _acquire(path: Path) -> int:
    """An fd holding the exclusive lock on `path` (the file at `path` now, not one unlinked by
    a holder that just released it)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError.of(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TrialBusyError(f"{path.parent}: another process is training this trial "
                                 f"(it holds {path.name}); wait for it or stop it") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder removed the file between open and flock: again


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # while still held: a waiter re-checks the inode and opens a fresh file
    os.close(fd)


@contextlib.contextmanager
def hold_trials(checkpoints: Sequence[Path]) -> Iterator[None]:
    """Hold every trial of `checkpoints` while inside; `TrialBusyError` when one is held."""
    held: list[tuple[Path, int]] = []
    created: list[Path] = []
    try:
        for ck in checkpoints:
            top = _first_missing(ck.parent)
            try:
                ck.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError.of(ck.parent, exc) from None
            if top is not None:
                created.append(top)
            path = lock_path(ck)
            held.append((path, _acquire(path)))
        yield
    finally:
        for path, fd in reversed(held):
            _release(path, fd)
        for top in created:  # a refused or failed run leaves no folder it made behind
            _remove_empty(top)


def _remove_empty(top: Path) -> None:
    """Remove `top` and the folders under it when they hold no file."""
    if not top.is_dir():
        return
    for folder, _dirs, files in os.walk(top, topdown=False):
        if files:
            return
        with contextlib.suppress(OSError):
            os.rmdir(folder)


__all__ = ["TrialBusyError", "hold_trials", "lock_path"]
