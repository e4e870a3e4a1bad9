"""Reading the results table and summarising it: bands of quantiles over trials, failure rates.

This is the only input of the figures and the report; nothing here reads models or markers.
A study with a `[sweep]` has a column per swept setting (`training.lr`, reduce/table.py): each
combination of their values is drawn and reported as a method of its own (`robust lr=0.1`: one
curve per method and values, on the same figures), so every summary below groups by it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.errors import InputError

REQUIRED = ("method", "radius", "trial", "metric", "value", "key", "failed_training", "settings",
            "settings_hash", "study")
ERROR_METRIC = "reduce_error"
AXIS_PREFIX = "training."   # the results table's columns of swept settings
QUANTILES = {"q10": 0.10, "q25": 0.25, "median": 0.50, "q75": 0.75, "q90": 0.90}


class ResultsError(InputError, ValueError):
    """The results table is missing or is not one the figures can be drawn from."""


def load_results(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ResultsError(f"{path}: no results table; run `drosweep reduce` first")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # damaged file: pyarrow raises many types
        raise ResultsError(f"{path}: cannot read the results table "
                           f"({type(exc).__name__})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ResultsError(f"{path}: not a drosweep results table (no column(s) {missing})")
    if df.empty or (df["metric"] == ERROR_METRIC).all():
        raise ResultsError(f"{path}: the results table holds no evaluated model yet")
    return by_swept_values(df)


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def by_swept_values(df: pd.DataFrame) -> pd.DataFrame:
    """The table with each method named with its swept values (`robust lr=0.1`), so that the
    summaries group by method × values; unchanged without a sweep."""
    axes = sorted(c for c in df.columns if str(c).startswith(AXIS_PREFIX))
    if not axes:
        return df
    df = df.copy()
    df["method"] = [f"{m} " + ", ".join(f"{a.removeprefix(AXIS_PREFIX)}={_text(v)}"
                                        for a, v in zip(axes, values, strict=True))
                    for m, *values in df[["method", *axes]].itertuples(index=False)]
    return df


def metric_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["metric"] != ERROR_METRIC]


def bands(df: pd.DataFrame, metric: str, include_failed: bool = False) -> pd.DataFrame:
    """Per (method, radius): trials used, median and the 10/25/75/90% quantiles of `metric`."""
    rows = metric_rows(df)
    rows = rows[rows["metric"] == metric]
    if not include_failed:
        rows = rows[~rows["failed_training"].astype(bool)]
    grouped = rows.groupby(["method", "radius"])["value"]
    out = pd.DataFrame({"n": grouped.count()})
    for name, q in QUANTILES.items():
        out[name] = grouped.quantile(q)
    return out.reset_index()


def failure_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Per (method, radius): share of evaluated trials flagged as failed trainings."""
    rows = metric_rows(df).drop_duplicates(["method", "radius", "key"])
    grouped = rows.groupby(["method", "radius"])["failed_training"]
    return pd.DataFrame({"n": grouped.count(),
                         "failed": grouped.sum().astype(int),
                         "rate": grouped.mean().astype(float)}).reset_index()


def trial_values(df: pd.DataFrame, include_failed: bool = False) -> pd.DataFrame:
    """One row per (method, radius, trial, metric) with its value: what the claims are checked
    on (medians and the spread across trials)."""
    rows = metric_rows(df)
    if not include_failed:
        rows = rows[~rows["failed_training"].astype(bool)]
    return rows[["method", "radius", "trial", "metric", "value"]].reset_index(drop=True)


def medians(df: pd.DataFrame, include_failed: bool = False) -> pd.DataFrame:
    """Median of every metric per (method, radius), one column per metric."""
    rows = metric_rows(df)
    if not include_failed:
        rows = rows[~rows["failed_training"].astype(bool)]
    table = rows.pivot_table(index=["method", "radius"], columns="metric", values="value",
                             aggfunc="median")
    table.columns.name = None
    return table.reset_index()
