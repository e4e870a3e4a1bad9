"""Figures and report from the results table alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from plots.claims import Claim, ClaimSettings, check_claims
from plots.decision import render_decision
from plots.figures import failure_figure, metric_figure, save
from plots.report import write_report
from plots.results import (
    bands,
    failure_rates,
    load_results,
    medians,
    metric_rows,
    trial_values,
)
from plots.style import ordered_metrics


@dataclass(frozen=True)
class RenderResult:
    figures: list[Path]
    report: Path | None = None
    claims: list[Claim] = field(default_factory=list)


def render_figures(df: pd.DataFrame, folder: Path, include_failed: bool = False) -> list[Path]:
    """One PNG + PDF per metric (median and bands against ε), and the failure rates."""
    out: list[Path] = []
    for metric in ordered_metrics(list(metric_rows(df)["metric"].unique())):
        band = bands(df, metric, include_failed)
        if band.empty:
            continue
        fig = metric_figure(band, metric)
        out += save(fig, folder, metric)
    out += save(failure_figure(failure_rates(df)), folder, "failed_training_rate")
    return out


def render(table: Path, figures: Path, report: Path | None = None, *,
           study_text: str | None = None, include_failed: bool = False,
           claim_settings: ClaimSettings | None = None,
           threshold: float | None = None) -> RenderResult:
    """Figures into `figures`; with `report`, also report.md (figures linked relative to it)."""
    df = load_results(table)
    paths = render_figures(df, figures, include_failed) + render_decision(table, figures)
    if report is None:
        return RenderResult(paths)
    med = medians(df, include_failed)
    claims = check_claims(trial_values(df, include_failed), claim_settings)
    note = f" (clean accuracy < {threshold:g})" if threshold is not None else ""
    write_report(df, med, claims, paths, report, study_text=study_text,
                 include_failed=include_failed, threshold_note=note)
    return RenderResult(paths, report, claims)
