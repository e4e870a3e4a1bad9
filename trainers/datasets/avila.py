"""UCI Avila, the paper's data set: its facts (files, rows, classes) and its registration.

The reading itself (format, verification, standardization) is `trainers.data.load_avila`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.registry import DataFile, DataOptions, DataSource, register

if TYPE_CHECKING:
    from trainers.data import Dataset

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


def _load(options: DataOptions, folder: Path | None) -> Dataset:
    from trainers.data import load_avila

    return load_avila(folder)


def _fetch(folder: Path) -> None:
    from trainers.data import fetch_avila

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
