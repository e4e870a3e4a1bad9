"""What a trial trained on, by content: the sha256 of each file its data set reads.

The DONE marker records it (`data_fingerprint`), and `status`, `resume` and `reduce` compare it
with the files as they are now (`data_change`): a table edited after training shows its trials as
changed instead of "done", like a model file altered after training. One place owns the
fingerprint; each file is hashed once per process and version (path, size, mtime_ns), so a status
of 10,000 trials of one table hashes it once. Torch-free (`status` imports it).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from common.atomic import sha256_file
from trainers.datasets.registry import DataOptions, get_source

DATA_CHANGED = "data changed"   # how a reason of `data_change` begins
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """The file's sha256, hashed once per (path, size, mtime_ns); OSError when unreadable."""
    st = os.stat(path)
    stamp = (str(path), st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(stamp)
    if digest is None:
        digest = _DIGESTS[stamp] = sha256_file(path)
    return digest


def data_files(dataset: str, options: DataOptions,
               data_dir: str | os.PathLike[str] | None) -> tuple[Path, ...]:
    """The files data set `dataset` reads with these settings (none for a generated set): its
    fixed files in the data folder, and the files its settings name (a user's table)."""
    source = get_source(dataset)
    folder = source.folder(data_dir)
    files = [(folder / f.name).absolute() for f in source.files] if folder is not None else []
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if f.metadata.get("path") and value is not None:
            files.append(Path(value).absolute())
    return tuple(files)


def data_fingerprint(dataset: str, options: DataOptions,
                     data_dir: str | os.PathLike[str] | None) -> dict[str, str]:
    """Path → sha256 of every file the data set reads, as they are now."""
    return {str(path): file_digest(path) for path in data_files(dataset, options, data_dir)}


def data_change(recorded: dict[str, str] | None) -> str | None:
    """None when every recorded file still has its sha256, else the reason. What cannot be
    compared is unknown, not changed: a marker written before fingerprints, and a file not found
    or not readable from here (a node's local copy of the data; reading the data says more)."""
    for path, sha in sorted((recorded or {}).items()):
        try:
            now = file_digest(path)
        except OSError:
            continue
        if now != sha:
            return f"{DATA_CHANGED}: {path} (its content differs from what the trial trained on)"
    return None


__all__ = ["DATA_CHANGED", "data_change", "data_files", "data_fingerprint", "file_digest"]
