"""UCI Avila, the paper's data set: its facts (files, rows, classes), its reading and its
registration.

Avila is read in the UCI text format (no header; a header row is tolerated), features F6 and F10
(zero-based columns 5 and 9) are dropped, the rest standardized with training-set statistics, and
the 12 copyists mapped to labels 0..11 in sorted order A..Y. Every load is verified (rows, classes),
so a wrong or truncated file fails with the file and the problem named, not with a silent mis-fit.
Torch and numpy are imported when a file is read.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.base import Dataset, standardize
from trainers.datasets.install import download, install_verified
from trainers.datasets.registry import (
    ENV_DATA_DIR,
    DataError,
    DataFile,
    DataOptions,
    DataSource,
    register,
    resolve_data_dir,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

AVILA_CLASSES = ("A", "B", "C", "D", "E", "F", "G", "H", "I", "W", "X", "Y")
AVILA_FILES = {"train": "avila-tr.txt", "test": "avila-ts.txt"}
AVILA_ROWS = {"train": 10430, "test": 10437}
AVILA_TRAIN_CLASS_COUNTS = {"A": 4286, "B": 5, "C": 103, "D": 352, "E": 1095, "F": 1961, "G": 446,
                            "H": 519, "I": 831, "W": 44, "X": 522, "Y": 266}
AVILA_SHA256 = {
    "avila-tr.txt": "71151f37e1f825f88d6530cfa1e154e63018d41cf03c1d4ab90b17045033d0c7",
    "avila-ts.txt": "7bd296c2ab437d0f27ab92950ac14b700dcc89d53dcf5acdd111ac183ad5f6a3",
}
DROPPED_COLUMNS = (5, 9)
AVILA_URL = "https://archive.ics.uci.edu/static/public/459/avila.zip"
AVILA_FEATURES = 10 - len(DROPPED_COLUMNS)
AVILA_COLUMNS = tuple(f"F{i}" for i in range(1, 11))  # UCI's names of the 10 feature columns


def _read_avila_file(path: Path, expected_rows: int) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; get the data with `drosweep data fetch` "
                        f"or point --data-dir / ${ENV_DATA_DIR} at a folder holding {path.name}")
    feats: list[list[float]] = []
    labels: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 11:
                raise DataError(f"{path}:{lineno}: expected 10 features and a class letter "
                                f"(11 comma-separated fields), found {len(parts)}")
            try:
                row = [float(p) for p in parts[:10]]
            except ValueError:
                if lineno == 1 and not feats:  # a header row, as some copies add
                    continue
                raise DataError(f"{path}:{lineno}: non-numeric feature in {line[:60]!r}") from None
            if parts[10] not in AVILA_CLASSES:
                raise DataError(f"{path}:{lineno}: unknown class {parts[10]!r}; "
                                f"Avila has {', '.join(AVILA_CLASSES)}")
            feats.append(row)
            labels.append(parts[10])
    if len(feats) != expected_rows:
        raise DataError(f"{path}: {len(feats)} data rows, expected {expected_rows} "
                        f"(not the UCI Avila file, or truncated)")
    import numpy as np

    x = np.asarray(feats, dtype=np.float64)
    y = np.asarray([AVILA_CLASSES.index(c) for c in labels], dtype=np.int64)
    return x, y


def load_avila(data_dir: str | os.PathLike[str] | None = None,
               dtype: torch.dtype | None = None) -> Dataset:
    """Both files read, verified and standardized (float32 features unless `dtype` says
    otherwise)."""
    import numpy as np
    import torch

    dtype = torch.float32 if dtype is None else dtype
    folder = resolve_data_dir(data_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: Avila data folder not found; run `drosweep data fetch` "
                        f"(or `drosweep data fetch --dest DIR` and pass --data-dir DIR / "
                        f"set ${ENV_DATA_DIR})")
    x_tr, y_tr = _read_avila_file(folder / AVILA_FILES["train"], AVILA_ROWS["train"])
    x_ts, y_ts = _read_avila_file(folder / AVILA_FILES["test"], AVILA_ROWS["test"])
    counts = {c: int((y_tr == i).sum()) for i, c in enumerate(AVILA_CLASSES)}
    if counts != AVILA_TRAIN_CLASS_COUNTS:
        raise DataError(f"{folder / AVILA_FILES['train']}: class counts {counts} differ from "
                        f"the UCI description {AVILA_TRAIN_CLASS_COUNTS}")
    if len(np.unique(y_ts)) != len(AVILA_CLASSES):
        raise DataError(f"{folder / AVILA_FILES['test']}: not all 12 classes present")
    keep = [i for i in range(10) if i not in DROPPED_COLUMNS]
    x_tr, x_ts, scaling = standardize(x_tr[:, keep], x_ts[:, keep],
                                      tuple(AVILA_COLUMNS[i] for i in keep), AVILA_COLUMNS)
    return Dataset(torch.as_tensor(x_tr, dtype=dtype), torch.as_tensor(y_tr),
                   torch.as_tensor(x_ts, dtype=dtype), torch.as_tensor(y_ts), AVILA_CLASSES,
                   scaling)


def fetch_avila(dest: str | os.PathLike[str] | None = None, url: str = AVILA_URL,
                timeout: float = 60.0) -> Path:
    """Download avila.zip from UCI, verify both files (checksums, rows, classes), install them."""
    folder = resolve_data_dir(dest)
    payload = download(url, timeout, f"no network? copy avila-tr.txt and avila-ts.txt into "
                                     f"{folder} by hand")
    return install_avila_zip(payload, folder)


def install_avila_zip(payload: bytes, folder: Path) -> Path:
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile:
        raise DataError("the download is not a zip archive (UCI changed the address?)") from None
    found: dict[str, bytes] = {}
    for info in archive.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if base in AVILA_SHA256:
            found[base] = archive.read(info)
    missing = sorted(set(AVILA_SHA256) - set(found))
    if missing:
        raise DataError(f"avila.zip lacks {missing}")
    # verify rows and class counts (as in avila-description.txt) before touching the destination;
    # the checksums of the reference copy are reported, not enforced (line endings may differ)
    return install_verified(found, folder, load_avila, ".avila-")


def _load(options: DataOptions, folder: Path | None) -> Dataset:
    return load_avila(folder)


def _fetch(folder: Path) -> None:
    fetch_avila(folder)


AVILA = register(DataSource(
    name="avila",
    description="UCI Avila: 10 layout features of medieval manuscript rows (F6 and F10 "
                "dropped), 12 copyists",
    load=_load,
    title="Avila",
    n_features=AVILA_FEATURES, n_classes=len(AVILA_CLASSES), classes=AVILA_CLASSES,
    train_rows=AVILA_ROWS["train"], test_rows=AVILA_ROWS["test"],
    # the reference copy's checksums are reported, not enforced (line endings may differ):
    # rows and per-class counts are what `load` verifies
    files=tuple(DataFile(name, AVILA_SHA256[name]) for name in AVILA_FILES.values()),
    fetch=_fetch,
    citation="UCI Avila, CC BY 4.0: De Stefano et al., Eng. Appl. of AI 72 (2018) 99-110",
))
