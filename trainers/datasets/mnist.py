"""`mnist`: MNIST digits resized to 14×14 (196 features, 10 classes, 60,000 / 10,000 rows).

The four IDX files are fetched once (`drosweep data fetch mnist`) and kept gzipped as
distributed, so their SHA-256 sums can be checked against the reference ones; a training job only
reads them, never downloads. Resizing is fixed: the mean of each 2×2 block of the 28×28 image
(exact, no interpolation choices), then pixels scaled to [0, 1] (not standardized, so that a radius
is in units of pixel intensity).
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.install import install_verified
from trainers.datasets.registry import DataError, DataFile, DataOptions, DataSource, register

if TYPE_CHECKING:
    import numpy as np

    from trainers.datasets.base import Dataset

MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_ROWS = {"train": 60000, "t10k": 10000}
MNIST_SIDE = 28
MNIST_POOL = 2                       # 28×28 -> 14×14
MNIST_CLASSES = tuple(str(d) for d in range(10))
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")
_MAGIC = {"images": 2051, "labels": 2049}


def _read_idx(path: Path, kind: str, rows: int) -> np.ndarray:
    """The array of one gzipped IDX file, after checking its magic number, shape and size."""
    import numpy as np

    try:
        with gzip.open(path, "rb") as fh:
            blob = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; run `drosweep data fetch mnist`") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    dims = 3 if kind == "images" else 1
    header = 4 + 4 * dims
    if len(blob) < header:
        raise DataError(f"{path}: not an IDX file (too short)")
    magic = int.from_bytes(blob[:4], "big")
    shape = tuple(int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    expected = (rows, MNIST_SIDE, MNIST_SIDE) if kind == "images" else (rows,)
    if magic != _MAGIC[kind] or shape != expected:
        raise DataError(f"{path}: IDX {kind} of shape {shape} (magic {magic}), expected "
                        f"{expected} (magic {_MAGIC[kind]}): not the MNIST file")
    if len(blob) != header + int(np.prod(shape)):
        raise DataError(f"{path}: {len(blob) - header} data bytes for shape {shape} (truncated?)")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape)


def resize_14(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 196) float64 in [0, 1]: the mean of each 2×2 block."""
    n, side = images.shape[0], MNIST_SIDE // MNIST_POOL
    sums = images[:, 0::MNIST_POOL, 0::MNIST_POOL].astype("uint16")
    for i in range(MNIST_POOL):
        for j in range(MNIST_POOL):
            if i or j:
                sums += images[:, i::MNIST_POOL, j::MNIST_POOL]
    return sums.reshape(n, side * side) / (255.0 * MNIST_POOL * MNIST_POOL)


def read_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    out = []
    for split, rows in MNIST_ROWS.items():
        images = _read_idx(folder / f"{split}-images-idx3-ubyte.gz", "images", rows)
        labels = _read_idx(folder / f"{split}-labels-idx1-ubyte.gz", "labels", rows)
        if labels.max() >= len(MNIST_CLASSES):
            raise DataError(f"{folder / f'{split}-labels-idx1-ubyte.gz'}: label "
                            f"{int(labels.max())} is not a digit")
        out += [resize_14(images), labels.astype("int64")]
    return out[0], out[1], out[2], out[3]


def _load(options: DataOptions, folder: Path | None) -> Dataset:
    import torch

    from trainers.datasets.base import Dataset

    assert folder is not None
    x_tr, y_tr, x_ts, y_ts = read_mnist(folder)
    return Dataset(torch.as_tensor(x_tr, dtype=torch.float32), torch.as_tensor(y_tr),
                   torch.as_tensor(x_ts, dtype=torch.float32), torch.as_tensor(y_ts),
                   MNIST_CLASSES)


def install_mnist(blobs: dict[str, bytes], folder: Path,
                  sha256: dict[str, str] | None = None) -> Path:
    """Check each file's SHA-256, then read them all in a staging folder, then install them
    atomically: nothing is written unless all four are the reference files."""
    for name, reference in (sha256 or MNIST_SHA256).items():
        digest = hashlib.sha256(blobs[name]).hexdigest()
        if digest != reference:
            raise DataError(f"{name}: sha256 {digest}, expected {reference} (a corrupt or "
                            f"changed download)")
    return install_verified(blobs, folder, read_mnist, ".mnist-")


def fetch_mnist(folder: Path, mirrors: tuple[str, ...] = MNIST_MIRRORS,
                timeout: float = 60.0) -> None:
    blobs: dict[str, bytes] = {}
    for name in MNIST_SHA256:
        problems = []
        for mirror in mirrors:
            try:
                with urllib.request.urlopen(mirror + name, timeout=timeout) as response:
                    blobs[name] = response.read()
                break
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                problems.append(f"{mirror + name}: {getattr(exc, 'reason', exc)}")
        if name not in blobs:
            raise DataError(f"cannot download {name} ({'; '.join(problems)}; no network? copy "
                            f"the four MNIST .gz files into {folder} by hand)")
    install_mnist(blobs, folder)


MNIST = register(DataSource(
    name="mnist",
    description="MNIST digits, 2x2-mean resized to 14x14 (196 features, pixels in [0, 1]), "
                "10 classes",
    load=_load,
    title="MNIST",
    n_features=(MNIST_SIDE // MNIST_POOL) ** 2, n_classes=len(MNIST_CLASSES),
    classes=MNIST_CLASSES, train_rows=MNIST_ROWS["train"], test_rows=MNIST_ROWS["t10k"],
    files=tuple(DataFile(name, sha) for name, sha in MNIST_SHA256.items()),
    fetch=fetch_mnist,
    citation="MNIST: Y. LeCun, C. Cortes, C. J. C. Burges, http://yann.lecun.com/exdb/mnist/",
))
