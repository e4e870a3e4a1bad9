"""Atomic, durable writes: a reader sees the old file or the new one, never half of either.

A unique temp name in the same directory, fsync, `os.replace`, then fsync of the directory, so a
crash or a kill at any point leaves no torn file behind (the temp file is removed on error; one
left by a kill is removed by `remove_stale_temps` when its owner next starts). A failed write
(disk full, quota) raises `StorageError` naming the file.

Files that must prove their own integrity (checkpoints) are written with `atomic_torch_save_verified`:
the torch payload is wrapped with its sha256 and `torch_load_verified` refuses a file whose
content does not match, so a flipped byte in tensor data is an error, never other weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from common.errors import InputError

VERIFIED_FORMAT = "drosweep-verified/1"
STALE_TEMP_S = 60.0   # a temp file older than this has no live writer (a write takes milliseconds)


class StorageError(InputError, OSError):
    """A write that failed (disk full, quota, I/O error); the message names the file, `path`
    holds it (whose write it was: a pack's trial, a study's file)."""

    path: str | None = None

    @classmethod
    def of(cls, target: Path, exc: OSError) -> StorageError:
        err = cls(f"{target}: cannot write ({exc.strerror or exc})")
        err.errno, err.path = exc.errno, str(target)
        return err


class IntegrityError(ValueError):
    """A file whose content does not match its recorded sha256, or that carries none."""


class UnhashedError(IntegrityError):
    """A readable torch file without a content hash (written before hashes existed): `content`
    holds what it contains, for a caller that can vouch for it in another way."""

    def __init__(self, message: str, content: Any) -> None:
        super().__init__(message)
        self.content = content


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_pattern(path: str | os.PathLike[str]) -> str:
    """The glob of the temp files `atomic_write_bytes` creates for `path` (in its folder)."""
    return f".{Path(path).name}.*.tmp"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise StorageError.of(target, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise StorageError.of(target, exc) from None
        raise
    _fsync_dir(target.parent)


def remove_stale_temps(path: str | os.PathLike[str], older_than_s: float = STALE_TEMP_S) -> int:
    """Remove temp files of `path` left by a killed writer; returns how many were removed.

    Only files older than `older_than_s` go: a concurrent writer's temp file lives milliseconds."""
    target = Path(path)
    removed = 0
    now = time.time()
    for tmp in target.parent.glob(temp_pattern(target)):
        with contextlib.suppress(OSError):
            if now - tmp.lstat().st_mtime >= older_than_s:
                tmp.unlink()
                removed += 1
    return removed


def unwritable_reason(folder: str | os.PathLike[str]) -> str | None:
    """Why files cannot be written under `folder` (None: they can). Creates nothing: the nearest
    existing ancestor is probed with a temporary file that is removed, which is what a write would
    meet (permissions, a read-only mount, root's rights), so the folders need not exist yet."""
    path = Path(folder).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"{existing}: {exc.strerror or exc}"
    return None


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    import torch  # here, so that status and plan never pay for importing torch

    torch.save(obj, buffer)
    return buffer.getvalue()


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> str:
    """Write `obj` as a torch file; returns the sha256 of the bytes written."""
    data = torch_bytes(obj)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def atomic_torch_save_verified(obj: Any, path: str | os.PathLike[str]) -> str:
    """Write `obj` wrapped with the sha256 of its torch bytes; returns that sha256."""
    import torch

    payload = torch_bytes(obj)
    digest = hashlib.sha256(payload).hexdigest()
    wrapper = {"format": VERIFIED_FORMAT, "sha256": digest,
               "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}
    atomic_write_bytes(path, torch_bytes(wrapper))
    return digest


def differing_prefixes(actual: str, recorded: str, minimum: int = 12) -> tuple[str, str]:
    """Prefixes of two hex digests long enough to differ (at least `minimum` characters): a
    flipped byte in the stored hash changes a late character, and 12 equal characters on both
    sides of "does not match" read as a contradiction."""
    n = minimum
    while n < max(len(actual), len(recorded)) and actual[:n] == recorded[:n]:
        n += 4
    return actual[:n], recorded[:n]


def torch_load_verified(path: str | os.PathLike[str]) -> Any:
    """The object `atomic_torch_save_verified` wrote, after checking its sha256.

    `IntegrityError` when the file carries no hash or its content does not match; unreadable
    files raise what `torch.load` raises."""
    import torch

    wrapper = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(wrapper, dict) or wrapper.get("format") != VERIFIED_FORMAT:
        raise UnhashedError(f"{path}: carries no content hash (not written by this version)",
                            wrapper)
    payload, recorded = wrapper.get("payload"), wrapper.get("sha256")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8 \
            or payload.dim() != 1 or not isinstance(recorded, str):
        raise IntegrityError(f"{path}: malformed content-hash wrapper")
    data = payload.numpy().tobytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        shown, kept = differing_prefixes(actual, recorded)
        raise IntegrityError(f"{path}: content sha256 {shown} does not match the recorded "
                             f"{kept} (corrupted or altered)")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
