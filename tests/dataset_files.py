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


def write_mnist(folder: Path, seed: int = 0) -> dict[str, bytes]:
    """The four gzipped IDX files in MNIST's format and sizes (60,000 + 10,000 images of 28×28):
    each image a bright 4×4 square at a place given by its digit, plus sparse noise."""
    import gzip

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    blobs: dict[str, bytes] = {}
    for split, rows in (("train", 60000), ("t10k", 10000)):
        labels = rng.integers(0, 10, size=rows).astype(np.uint8)
        images = np.zeros((rows, 28, 28), dtype=np.uint8)
        for digit in range(10):
            r, c = 4 + 8 * (digit // 4), 2 + 6 * (digit % 4)
            images[labels == digit, r:r + 4, c:c + 4] = 255
        noise = rng.random((rows, 28, 28)) < 0.01
        images[noise] = 128
        for kind, magic, array in (("images", 2051, images), ("labels", 2049, labels)):
            header = magic.to_bytes(4, "big") + b"".join(
                d.to_bytes(4, "big") for d in array.shape)
            name = f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
            blobs[name] = gzip.compress(header + array.tobytes(), compresslevel=1, mtime=0)
            (folder / name).write_bytes(blobs[name])
    return blobs
