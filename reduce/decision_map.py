"""The decision map of a 2-D study: what one model per (method, radius) predicts over the plane.

For each (method, radius) of the results table, the trial with the median worst-case accuracy at
that radius (failed trainings left out; the lower middle one of an even count) is evaluated on a
regular grid over the data's range: its class and the probability of that class in every cell.
The table also holds the test points drawn under the map (a seeded subset) and marks a few of
them, near the other class, around which the figure draws the ε-ball. The figures read this table
(plots/decision.py), never the models, so a figure is redrawn without torch.

The table is tidy (one row per cell or point, `kind` = cell | point), written atomically as
parquet and CSV beside the results table, and rewritten at every reduction of a 2-D study.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from common.atomic import atomic_write_bytes
from jobs import Paths, Study
from reduce.errors import ModelFileError
from reduce.evaluate import CLEAN, WORST
from reduce.model_file import load_model
from reduce.table import ERROR_METRIC
from trainers.data import Dataset, load_dataset
from trainers.datasets import get_source
from trainers.device import resolve_device

FORMAT = 1
COLUMNS = ["kind", "method", "radius", "trial", "key", "x0", "x1", "label", "confidence",
           "ball", "selected_by", "model_sha256", "study", "study_fingerprint", "format"]
_DTYPES = {"kind": "string", "method": "string", "radius": "float64", "trial": "int64",
           "key": "string", "x0": "float64", "x1": "float64", "label": "int64",
           "confidence": "float64", "ball": "bool", "selected_by": "string",
           "model_sha256": "string", "study": "string", "study_fingerprint": "string",
           "format": "int64"}
SELECTED_BY = "median worst-case accuracy at the radius"


@dataclass(frozen=True)
class MapSettings:
    resolution: int = 121      # grid cells per axis
    margin: float = 0.1        # the grid extends the data's range by this share on each side
    points: int = 400          # test points drawn under the map (a seeded subset)
    balls: int = 5             # of which this many get an ε-ball
    seed: int = 0


@dataclass(frozen=True)
class Representative:
    method: str
    radius: float
    trial: int
    key: str
    model_sha256: str


def representatives(table: pd.DataFrame) -> list[Representative]:
    """Per (method, radius), the trial with the median worst-case accuracy at that radius
    (clean accuracy where the table has no worst case)."""
    rows = table[(table["metric"] != ERROR_METRIC) & ~table["failed_training"].astype(bool)]
    picked = []
    for _, group in rows.groupby(["method", "radius"], sort=True):
        method, radius = str(group["method"].iloc[0]), float(group["radius"].iloc[0])
        metric = WORST if (group["metric"] == WORST).any() else CLEAN
        values = group[group["metric"] == metric].sort_values(["value", "trial"], kind="stable")
        if values.empty:
            continue
        row = values.iloc[(len(values) - 1) // 2]
        picked.append(Representative(method, radius, int(row["trial"]),
                                     str(row["key"]), str(row["model_sha256"])))
    return picked


def grid_axes(data: Dataset, settings: MapSettings) -> tuple[np.ndarray, np.ndarray]:
    """The cell centres along each axis: the range of all points, widened by the margin."""
    pts = torch.cat([data.x_train, data.x_test]).double().cpu().numpy()
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = (hi - lo) * settings.margin
    return (np.linspace(lo[0] - pad[0], hi[0] + pad[0], settings.resolution),
            np.linspace(lo[1] - pad[1], hi[1] + pad[1], settings.resolution))


def ball_points(x: np.ndarray, y: np.ndarray, count: int) -> np.ndarray:
    """Indices of `count` points close to the other class and apart from each other: where a
    ball of some radius reaches across the classes. Depends on the data alone, so every method's
    panel shows the same points."""
    if count <= 0 or len(np.unique(y)) < 2:
        return np.zeros(0, dtype=np.int64)
    gaps = np.full(len(x), np.inf)
    for cls in np.unique(y):
        own, other = y == cls, x[y != cls]
        d = np.abs(x[own][:, None, :] - other[None, :, :]).max(axis=2).min(axis=1)
        gaps[own] = d
    spread = np.abs(x.max(axis=0) - x.min(axis=0)).max() / (2 * count)
    chosen: list[int] = []
    for i in np.argsort(gaps, kind="stable"):
        if all(np.abs(x[i] - x[j]).max() > spread for j in chosen):
            chosen.append(int(i))
        if len(chosen) == count:
            break
    return np.asarray(chosen, dtype=np.int64)


def _point_rows(data: Dataset, settings: MapSettings, base: dict[str, object]) -> pd.DataFrame:
    x = data.x_test.double().cpu().numpy()
    y = data.y_test.cpu().numpy().astype(np.int64)
    if len(y) > settings.points:
        idx = np.sort(np.random.default_rng(settings.seed).permutation(len(y))[:settings.points])
        x, y = x[idx], y[idx]
    ball = np.zeros(len(y), dtype=bool)
    ball[ball_points(x, y, settings.balls)] = True
    return pd.DataFrame({**base, "kind": "point", "x0": x[:, 0], "x1": x[:, 1], "label": y,
                         "confidence": np.nan, "ball": ball})


@torch.no_grad()
def _cell_rows(model: torch.nn.Module, gx: np.ndarray, gy: np.ndarray,
               device: torch.device) -> pd.DataFrame:
    xx, yy = np.meshgrid(gx, gy)
    pts = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], axis=1), dtype=torch.float32)
    prob = torch.softmax(model(pts.to(device)).float(), dim=1).cpu()
    conf, label = prob.max(dim=1)
    return pd.DataFrame({"kind": "cell", "x0": xx.ravel(), "x1": yy.ravel(),
                         "label": label.numpy().astype(np.int64),
                         "confidence": conf.numpy().astype(np.float64), "ball": False})


def decision_map(table: pd.DataFrame, data: Dataset, model_path: dict[str, str], study: str,
                 fingerprint: str, device: torch.device | str = "cpu",
                 settings: MapSettings = MapSettings()) -> pd.DataFrame:
    """The map of every (method, radius) of `table` whose representative model loads; `model_path`
    maps trial keys to model files (checked against the table's sha256)."""
    if data.n_features != 2:
        raise ValueError(f"a decision map needs 2 features, the data set has {data.n_features}")
    dev = torch.device(device)
    shared: dict[str, str | int] = {"study": study, "study_fingerprint": fingerprint,
                                    "format": FORMAT}
    gx, gy = grid_axes(data, settings)
    parts = [_point_rows(data, settings, {**shared, "method": "", "radius": np.nan, "trial": -1,
                                          "key": "", "selected_by": "", "model_sha256": ""})]
    for rep in representatives(table):
        path = model_path.get(rep.key)
        if path is None:
            continue
        try:
            model = load_model(path, 2, data.n_classes, dev, expected_sha256=rep.model_sha256)
        except ModelFileError:  # reported by the reduction already; no map for it
            continue
        cells = _cell_rows(model, gx, gy, dev)
        columns: dict[str, str | float | int] = {
            "method": rep.method, "radius": rep.radius, "trial": rep.trial, "key": rep.key,
            "selected_by": SELECTED_BY, "model_sha256": rep.model_sha256, **shared}
        for name, value in columns.items():
            cells[name] = value
        parts.append(cells)
    return normalize(pd.concat(parts, ignore_index=True))


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    return df.reindex(columns=COLUMNS).astype(_DTYPES)


def write_map(df: pd.DataFrame, parquet: Path, csv: Path) -> None:
    """Both files atomically (parquet first: it is the one read back)."""
    df = normalize(df)
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    atomic_write_bytes(parquet, buffer.getvalue())
    atomic_write_bytes(csv, df.to_csv(index=False, float_format="%.8g").encode())


def write_study_map(study: Study, table: pd.DataFrame, data_dir: str | None,
                    device: str = "auto") -> Path | None:
    """The decision map of a 2-D study, written beside its results table (None for other
    studies). Without a model to draw, a map left by an earlier reduction is removed, so a figure
    never shows models that are no longer in the table."""
    paths = Paths(study.root)
    if get_source(study.dataset).shape(study.data_options).n_features != 2:
        return None
    data = load_dataset(study.dataset, data_dir, options=study.data_options)
    keys = [rep.key for rep in representatives(table)]
    df = decision_map(table, data, {k: str(paths.model(k)) for k in keys}, study.name,
                      study.fingerprint, resolve_device(device))
    if not (df["kind"] == "cell").any():
        paths.decision_map.unlink(missing_ok=True)
        paths.decision_map_csv.unlink(missing_ok=True)
        return None
    write_map(df, paths.decision_map, paths.decision_map_csv)
    return paths.decision_map
