"""Download a data set's files and install them only once they read as that data set: the two
steps every fetchable data set shares (avila, grid, mnist)."""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from trainers.datasets.registry import DataError


def download(url: str, timeout: float, hint: str) -> bytes:
    """The bytes at `url`; one line naming the url, the reason and `hint` when it fails."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload: bytes = response.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url}: {reason} ({hint})") from None
    return payload


def install_verified(blobs: Mapping[str, bytes], folder: Path,
                     verify: Callable[[Path], object], prefix: str) -> Path:
    """Write `blobs` (file name -> bytes) into a staging folder beside `folder`, call `verify`
    on it (it raises when the files are not the data set), then write each file into `folder`
    atomically: a bad download leaves the destination untouched."""
    from common.atomic import atomic_write_bytes

    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=folder.parent if folder.parent.exists()
                                    else None))
    try:
        for name, blob in blobs.items():
            (staging / name).write_bytes(blob)
        verify(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        atomic_write_bytes(folder / name, blob)
    return folder
