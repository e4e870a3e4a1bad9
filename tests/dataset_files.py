"""Files in the formats of the data sets, written by the tests themselves (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainers.datasets.grid import GRID_COLUMNS, GRID_FILE, GRID_ROWS


def write_grid(folder: Path, rows: int = GRID_ROWS, seed: int = 0) -> Path:
    """A file in the UCI grid file's format: its header, 12 features, `stab` and `stabf`
    derived from it (unstable when stab > 0, as in the original), learnable from tau1 and p1."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    x = rng.normal(size=(rows, 12))
    stab = x[:, 0] - x[:, 4] + 0.2 * rng.normal(size=rows)
    lines = [",".join(GRID_COLUMNS)]
    for features, s in zip(x, stab, strict=True):
        label = '"unstable"' if s > 0 else '"stable"'
        lines.append(",".join(f"{v:.6f}" for v in features) + f",{s:.6f},{label}")
    path = folder / GRID_FILE
    path.write_text("\n".join(lines) + "\n")
    return path


def write_table(path: Path, rows: int = 120, seed: int = 0, classes: int = 3) -> Path:
    """A user's table: an id column, 5 numeric features, a text column and a label column."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=rows)
    x = rng.normal(size=(rows, 5)) + 2.0 * y[:, None]
    lines = ["id,f1,f2,f3,f4,f5,note,kind"]
    for i in range(rows):
        lines.append(f"{i}," + ",".join(f"{v:.5f}" for v in x[i]) + f",row {i},k{y[i]}")
    path.write_text("\n".join(lines) + "\n")
    return path
