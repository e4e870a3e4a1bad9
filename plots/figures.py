"""Figures against the radius, one per metric, drawn on Agg figures (no display, no pyplot state).

Per method: the median over trials as a line, the 25–75% band darker and the 10–90% band lighter,
in the paper's colours; Lipschitz estimates on a log axis; accuracies on [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from plots.style import (
    METHOD_LABELS,
    METRIC_LABELS,
    is_log_metric,
    method_color,
    method_marker,
    ordered_methods,
)


def _new_figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _radius_axis(ax: Axes) -> None:
    ax.set_xlabel("radius ε (L∞)")
    ax.grid(True, alpha=0.3)


def metric_figure(band: pd.DataFrame, metric: str) -> Figure:
    """`band` as returned by `plots.results.bands` for `metric`."""
    fig, ax = _new_figure()
    for method in ordered_methods(list(band["method"].unique())):
        b = band[band["method"] == method].sort_values("radius")
        color = method_color(method)
        ax.fill_between(b["radius"], b["q10"], b["q90"], color=color, alpha=0.12, linewidth=0)
        ax.fill_between(b["radius"], b["q25"], b["q75"], color=color, alpha=0.28, linewidth=0)
        ax.plot(b["radius"], b["median"], color=color, marker=method_marker(method), markersize=4,
                label=METHOD_LABELS.get(method, method))
    if is_log_metric(metric):
        ax.set_yscale("log")
    else:
        ax.set_ylim(0.0, 1.0)
    _radius_axis(ax)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title("median over trials; bands: 25–75% (dark), 10–90% (light)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def failure_figure(rates: pd.DataFrame) -> Figure:
    fig, ax = _new_figure()
    for method in ordered_methods(list(rates["method"].unique())):
        r = rates[rates["method"] == method].sort_values("radius")
        ax.plot(r["radius"], r["rate"], color=method_color(method), marker=method_marker(method),
                markersize=4, label=METHOD_LABELS.get(method, method))
    ax.set_ylim(-0.02, 1.02)
    _radius_axis(ax)
    ax.set_ylabel("failed trainings (share of trials)")
    ax.set_title("failed trainings (clean accuracy below the threshold)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def save(fig: Figure, folder: Path, stem: str) -> list[Path]:
    """PNG and PDF of `fig` under `folder` (written to a temp name, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        target = folder / f"{stem}.{ext}"
        tmp = folder / f".{stem}.tmp.{ext}"
        fig.savefig(tmp, dpi=150, format=ext)
        tmp.replace(target)
        out.append(target)
    return out
