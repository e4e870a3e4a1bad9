"""`report.md`: the study's settings, medians per (method, ε), the figures and the claim checks."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from plots.claims import SPREAD_NOTE, Claim
from plots.results import ERROR_METRIC, failure_rates, metric_rows
from plots.style import METRIC_LABELS, ordered_methods, ordered_metrics

SHORT = {"clean_accuracy": "clean", "worst_case_accuracy": "worst-case", "mean_accuracy": "mean",
         "pgd_accuracy": "PGD", "lipschitz_lower": "Lip. lower", "lipschitz_search": "Lip. search",
         "lipschitz_upper": "Lip. upper"}


def _fmt(value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"


def medians_markdown(med: pd.DataFrame, rates: pd.DataFrame) -> str:
    metrics = ordered_metrics([c for c in med.columns if c not in ("method", "radius")])
    head = ["method", "ε", "trials", "failed"] + [SHORT.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in ordered_methods(list(med["method"].unique())):
        for _, row in med[med["method"] == method].sort_values("radius").iterrows():
            rate = rates[(rates["method"] == method) & (rates["radius"] == row["radius"])]
            n = int(rate["n"].iloc[0]) if len(rate) else 0
            failed = int(rate["failed"].iloc[0]) if len(rate) else 0
            cells = [method, f"{row['radius']:g}", str(n), str(failed)]
            cells += [_fmt(row[m]) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _settings_block(df: pd.DataFrame) -> str:
    settings = df["settings"].dropna().unique()
    if len(settings) == 0:
        return "(none recorded)"
    blocks = []
    for text in settings:
        try:
            pretty = json.dumps(json.loads(text), indent=2, sort_keys=True)
        except ValueError:
            pretty = str(text)
        blocks.append(f"```json\n{pretty}\n```")
    note = "" if len(blocks) == 1 else "**Rows were evaluated under several settings.**\n\n"
    return note + "\n\n".join(blocks)


def write_report(df: pd.DataFrame, med: pd.DataFrame, claims: Sequence[Claim],
                 figures: Sequence[Path], path: Path, *, study_text: str | None = None,
                 include_failed: bool = False, threshold_note: str = "") -> Path:
    rows = metric_rows(df)
    study = ", ".join(sorted(map(str, df["study"].unique())))
    rates = failure_rates(df)
    errors = df[df["metric"] == ERROR_METRIC].drop_duplicates("key")
    n_models = rows["key"].nunique()
    n_failed = int(rates["failed"].sum())
    parts = [
        f"# Study `{study}`: results",
        "",
        f"Generated {datetime.now(UTC).isoformat(timespec='seconds')} from the results table: "
        f"{n_models} trained models evaluated, {len(errors)} could not be evaluated. "
        f"Failed trainings{threshold_note}: {n_failed} of {int(rates['n'].sum())} "
        f"(method, ε, trial) evaluations, "
        f"{'included in' if include_failed else 'excluded from'} the medians and bands.",
        "",
        "## Claims of the paper, checked",
        "",
        SPREAD_NOTE,
        "",
        *[f"- {c.line()}" for c in claims],
        "",
        "## Medians per method and radius",
        "",
        medians_markdown(med, rates),
        "",
        "## Figures",
        "",
    ]
    for fig in figures:
        if fig.suffix != ".png":
            continue
        rel = os.path.relpath(fig, path.parent)
        label = METRIC_LABELS.get(fig.stem, fig.stem.replace("_", " "))
        parts += [f"![{label}]({rel})", ""]
    if len(errors):
        parts += ["## Models that could not be evaluated", ""]
        parts += [f"- `{k}`: {reason}" for k, reason in zip(errors["key"], errors["error"],
                                                              strict=True)]
        parts.append("")
    parts += ["## Evaluation settings", "", _settings_block(rows), ""]
    if study_text:
        parts += ["## Study file", "", "```toml", study_text.rstrip(), "```", ""]
    text = "\n".join(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
