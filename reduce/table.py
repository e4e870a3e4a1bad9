"""The tidy results table: one row per (method, radius, trial, metric), written atomically.

Each row also carries the trial key, the training radius, the model's sha256, the evaluation
settings (hash and JSON), the study's name and fingerprint and the table format, so a table is
self-describing: rows of another study or a newer format are refused, and rows whose sha256 and
settings match the current model need no new evaluation. A model that could not be evaluated has
one row with metric `reduce_error`, value NaN and the reason in `error`; it is retried next time.
A study with a `[sweep]` has one more column per swept setting, named as the study file names it
(`training.lr`), after the fixed ones; a study without one has exactly the fixed columns.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.atomic import atomic_write_bytes
from reduce.errors import ReduceError
from reduce.evaluate import CLEAN

FORMAT = 1
ERROR_METRIC = "reduce_error"
COLUMNS = ["method", "radius", "trial", "metric", "value", "key", "trained_radius",
           "model_sha256", "settings_hash", "settings", "failed_training", "error", "study",
           "study_fingerprint", "format", "device", "evaluated_at"]
_DTYPES = {"method": "string", "radius": "float64", "trial": "int64", "metric": "string",
           "value": "float64", "key": "string", "trained_radius": "float64",
           "model_sha256": "string", "settings_hash": "string", "settings": "string",
           "failed_training": "bool", "error": "string", "study": "string",
           "study_fingerprint": "string", "format": "int64", "device": "string",
           "evaluated_at": "string"}


AXIS_PREFIX = "training."   # a column of a swept setting: `training.<setting>`


def axis_column(setting: str) -> str:
    """The column of a swept training setting (plots group by the columns with this prefix)."""
    return f"{AXIS_PREFIX}{setting}"


def axis_columns(df: pd.DataFrame) -> list[str]:
    return sorted(c for c in df.columns if str(c).startswith(AXIS_PREFIX))


def empty_table() -> pd.DataFrame:
    return normalize(pd.DataFrame({c: [] for c in COLUMNS}))


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in the canonical order and types (swept settings after the fixed ones), rows in a
    stable order."""
    axes = axis_columns(df)
    df = df.reindex(columns=COLUMNS + axes)
    df["error"] = df["error"].fillna("")
    df["failed_training"] = df["failed_training"].fillna(False)
    df = df.astype(_DTYPES)
    return df.sort_values(["method", *axes, "radius", "trial", "metric"], kind="stable",
                          ignore_index=True)


@dataclass(frozen=True)
class StudyIdentity:
    name: str
    fingerprint: str
    earlier: tuple[str, ...] = ()    # fingerprints its rows may carry from before (`migrate`)


def read_table(path: Path, identity: StudyIdentity) -> pd.DataFrame:
    """The table at `path` (empty when absent); refuses another study's or a newer format."""
    if not path.exists():
        return empty_table()
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise ReduceError(f"{path}: cannot read the results table ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); move it away to reduce from scratch") from None
    missing = [c for c in ("study", "format", "metric", "value", "key") if c not in df.columns]
    if missing:
        raise ReduceError(f"{path}: not a drosweep results table (no column(s) {missing}); "
                          f"move it away to reduce from scratch")
    if len(df):
        newest = int(df["format"].max())
        if newest > FORMAT:
            raise ReduceError(f"{path}: results table format {newest} is newer than this "
                              f"drosweep reads ({FORMAT}); upgrade drosweep")
        studies = sorted({str(s) for s in df["study"].unique()})
        prints = sorted({str(s) for s in df["study_fingerprint"].unique()})
        if studies != [identity.name] \
                or not set(prints) <= {identity.fingerprint, *identity.earlier}:
            raise ReduceError(f"{path}: results table belongs to another study ({studies[0]!r}, "
                              f"fingerprint {prints[0][:12]}) than {identity.name!r} "
                              f"(fingerprint {identity.fingerprint[:12]}); reduce into another "
                              f"--root or move the table away")
    return normalize(df)


def flag_failed_training(df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """failed_training = the trial's clean accuracy < threshold (paper: 0.12), on all its rows."""
    clean = df[df["metric"] == CLEAN].set_index(["key", "radius"])["value"]
    flags = clean < threshold
    index = pd.MultiIndex.from_frame(df[["key", "radius"]])
    df = df.copy()
    df["failed_training"] = flags.reindex(index).fillna(False).to_numpy(dtype=bool)
    return df


def write_table(df: pd.DataFrame, parquet: Path, csv: Path) -> None:
    """Both files atomically (parquet first: it is the one read back)."""
    df = normalize(df)
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    atomic_write_bytes(parquet, buffer.getvalue())
    atomic_write_bytes(csv, df.to_csv(index=False, float_format="%.10g").encode())


def rows_for(metrics: dict[float, dict[str, float]],
             base: dict[str, object]) -> list[dict[str, object]]:
    return [{**base, "radius": radius, "metric": metric, "value": value, "error": ""}
            for radius, values in metrics.items() for metric, value in values.items()]


def error_rows(radii: Iterable[float], base: dict[str, object],
               reason: str) -> list[dict[str, object]]:
    return [{**base, "radius": r, "metric": ERROR_METRIC, "value": math.nan, "error": reason}
            for r in radii]
