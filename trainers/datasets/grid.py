"""`grid`: UCI Electrical Grid Stability Simulated Data (Arzamasov et al., 2018).

10,000 simulations of a 4-node star grid: 12 features (reaction times tau1-4, powers p1-4,
price elasticities g1-4) and the label `stabf` (stable / unstable). `stab`, the real part of the
characteristic root that `stabf` is derived from (unstable when positive), is dropped: as a
feature it would give the label away. The split is the original's: the first 80% of the file's
rows train, the last 20% test; features are standardized with the training rows' statistics.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.install import download, install_verified
from trainers.datasets.registry import DataError, DataFile, DataOptions, DataSource, register
from trainers.datasets.tables import read_table

if TYPE_CHECKING:
    import numpy as np

    from trainers.datasets.base import Dataset

GRID_FILE = "Data_for_UCI_named.csv"
GRID_FEATURES = ("tau1", "tau2", "tau3", "tau4", "p1", "p2", "p3", "p4", "g1", "g2", "g3", "g4")
GRID_DROPPED = ("stab",)
GRID_LABEL = "stabf"
GRID_COLUMNS = GRID_FEATURES + GRID_DROPPED + (GRID_LABEL,)
GRID_CLASSES = ("stable", "unstable")
GRID_ROWS = 10000
GRID_TRAIN_ROWS = GRID_ROWS * 8 // 10
GRID_URL = ("https://archive.ics.uci.edu/static/public/471/"
            "electrical+grid+stability+simulated+data.zip")
GRID_SHA256: str | None = None   # no reference checksum is pinned: rows, columns and classes are


def read_grid(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features (rows in file order) and labels of a grid file, after checking its columns, rows
    and classes."""
    import numpy as np

    table = read_table(path)
    if table.header != GRID_COLUMNS:
        raise DataError(f"{path}: columns {', '.join(table.header)}; expected "
                        f"{', '.join(GRID_COLUMNS)} (not the UCI grid stability file)")
    if len(table.rows) != GRID_ROWS:
        raise DataError(f"{path}: {len(table.rows)} data rows, expected {GRID_ROWS} (not the UCI "
                        f"grid stability file, or truncated)")
    label = table.column(GRID_LABEL)
    x = table.numbers(list(GRID_FEATURES))
    y: list[int] = []
    for row, line in zip(table.rows, table.lines, strict=True):
        if row[label] not in GRID_CLASSES:
            raise DataError(f"{path}:{line}: unknown class {row[label]!r}; the grid file has "
                            f"{' and '.join(GRID_CLASSES)}")
        y.append(GRID_CLASSES.index(row[label]))
    for part, labels in (("first 80%", y[:GRID_TRAIN_ROWS]), ("last 20%", y[GRID_TRAIN_ROWS:])):
        if len(set(labels)) != len(GRID_CLASSES):
            raise DataError(f"{path}: the {part} of the rows lacks a class")
    return x, np.asarray(y, dtype=np.int64)


def _load(options: DataOptions, folder: Path | None) -> Dataset:
    from trainers.datasets.base import from_arrays

    assert folder is not None
    x, y = read_grid(folder / GRID_FILE)
    n = GRID_TRAIN_ROWS
    return from_arrays(x[:n], y[:n], x[n:], y[n:], GRID_CLASSES)


def _extract(payload: bytes) -> bytes:
    """The CSV itself, or the grid file inside a zip archive (UCI serves either)."""
    if not payload.startswith(b"PK"):
        return payload
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile:
        raise DataError("the download is not a zip archive (UCI changed the address?)") from None
    for info in archive.infolist():
        if info.filename.rsplit("/", 1)[-1] == GRID_FILE:
            return archive.read(info)
    raise DataError(f"the downloaded archive lacks {GRID_FILE}")


def install_grid(payload: bytes, folder: Path) -> Path:
    """Verify a downloaded grid file (checksum where one is pinned, columns, rows, classes) in a
    staging folder, then install it atomically; nothing is written when it is not the file."""
    blob = _extract(payload)
    digest = hashlib.sha256(blob).hexdigest()
    if GRID_SHA256 is not None and digest != GRID_SHA256:
        raise DataError(f"{GRID_FILE}: sha256 {digest}, expected {GRID_SHA256}")
    return install_verified({GRID_FILE: blob}, folder, lambda d: read_grid(d / GRID_FILE),
                            ".grid-")


def fetch_grid(folder: Path, url: str = GRID_URL, timeout: float = 60.0) -> None:
    payload = download(url, timeout, f"no network? copy {GRID_FILE} into {folder} by hand")
    install_grid(payload, folder)


GRID = register(DataSource(
    name="grid",
    description="UCI Electrical Grid Stability: 12 features of a simulated 4-node grid, "
                "stable / unstable",
    load=_load,
    title="Grid stability",
    n_features=len(GRID_FEATURES), n_classes=len(GRID_CLASSES), classes=GRID_CLASSES,
    train_rows=GRID_TRAIN_ROWS, test_rows=GRID_ROWS - GRID_TRAIN_ROWS,
    files=(DataFile(GRID_FILE, GRID_SHA256),),
    fetch=fetch_grid,
    citation="UCI Electrical Grid Stability Simulated Data, CC BY 4.0: Arzamasov, Boehm and "
             "Jochem, SmartGridComm 2018",
))
