"""Figures and the report, from the results table alone (never models, markers or the cluster).

API: `render(table, figures, report=None, *, study_text=None, include_failed=False,
claim_settings=ClaimSettings(), threshold=None) -> RenderResult(figures, report, claims)`;
building blocks `load_results`, `bands`, `failure_rates`, `medians`, `metric_figure`,
`failure_figure`, `trial_values`, `check_claims`. `ResultsError` is bad input (no or foreign table).
"""

from plots.claims import Claim, ClaimSettings, Verdict, check_claims
from plots.figures import failure_figure, metric_figure
from plots.render import RenderResult, render, render_figures
from plots.results import (
    ResultsError,
    bands,
    failure_rates,
    load_results,
    medians,
    trial_values,
)

__all__ = [
    "Claim",
    "ClaimSettings",
    "RenderResult",
    "ResultsError",
    "Verdict",
    "bands",
    "check_claims",
    "failure_figure",
    "failure_rates",
    "load_results",
    "medians",
    "metric_figure",
    "render",
    "render_figures",
    "trial_values",
]
