"""Decision regions of a 2-D study: one panel per (radius, method), the ε-balls drawn on top.

Rows are the radii, columns the methods (regular, robust, adversarial, langevin): the class each
method's representative model predicts over the plane (shaded by its confidence, the boundary as
a line), the test points, and around a few of them the L∞ ball of the row's radius (a square), so
one sees at a glance whether a method keeps the ball on one side of its boundary.

Drawn from the decision-map table that the reduction writes beside the results table
(`decision_map.parquet`; reduce/decision_map.py); a study without one (not 2-D) draws nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from plots.results import ResultsError
from plots.style import METHOD_LABELS, ordered_methods

MAP_NAME = "decision_map.parquet"   # beside the results table (jobs.paths.Paths.decision_map)
STEM = "decision_regions"
REQUIRED = ("kind", "method", "radius", "trial", "x0", "x1", "label", "confidence", "ball")
CLASS_COLORS = ("#3b6fb6", "#d1495b", "#2e933c", "#edae49", "#66308d", "#00798c", "#8d6a9f",
                "#c7744a", "#5c5c5c", "#a0c55f", "#e07bb5", "#30bced")


def map_beside(table: Path) -> Path:
    """Where the decision map of the results table `table` is."""
    return table.with_name(MAP_NAME)


def load_map(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # damaged file: pyarrow raises many types
        raise ResultsError(f"{path}: cannot read the decision map ({type(exc).__name__})") \
            from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ResultsError(f"{path}: not a drosweep decision map (no column(s) {missing})")
    return df


def _class_color(label: int) -> np.ndarray:
    return np.asarray(to_rgb(CLASS_COLORS[int(label) % len(CLASS_COLORS)]))


def _regions(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cells as an image (class colour faded to white where the model is unsure), the
    axes, and the label grid."""
    gx, gy = np.sort(cells["x0"].unique()), np.sort(cells["x1"].unique())
    ordered = cells.sort_values(["x1", "x0"], kind="stable")
    labels = ordered["label"].to_numpy().reshape(len(gy), len(gx))
    conf = ordered["confidence"].to_numpy().reshape(len(gy), len(gx))
    n_classes = max(int(labels.max()) + 1, 2)
    # confidence 1/n_classes (a guess) is white, 1 is the full class colour
    strength = np.clip((conf - 1 / n_classes) / (1 - 1 / n_classes), 0, 1)[..., None]
    colors = np.stack([_class_color(c) for c in range(n_classes)])[labels]
    image = 1 - 0.55 * strength * (1 - colors)
    return image, gx, gy, labels


def decision_figure(df: pd.DataFrame) -> Figure:
    """The grid of panels from a decision-map table."""
    cells = df[df["kind"] == "cell"]
    points = df[df["kind"] == "point"]
    if cells.empty:
        raise ResultsError("the decision map holds no model")
    methods = ordered_methods(list(cells["method"].unique()))
    radii = sorted(float(r) for r in cells["radius"].unique())
    fig = Figure(figsize=(2.6 * len(methods) + 0.4, 2.6 * len(radii) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(radii), len(methods), squeeze=False, sharex=True, sharey=True)
    balls = points[points["ball"].astype(bool)]
    for i, radius in enumerate(radii):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            panel = cells[(cells["method"] == method) & (cells["radius"] == radius)]
            if panel.empty:
                ax.set_axis_off()
                ax.set_title(f"{METHOD_LABELS.get(method, method)}, ε={radius:g}: no model",
                             fontsize=8)
                continue
            image, gx, gy, labels = _regions(panel)
            ax.imshow(image, origin="lower", extent=(gx[0], gx[-1], gy[0], gy[-1]),
                      interpolation="nearest", aspect="auto")
            if len(np.unique(labels)) > 1:
                ax.contour(gx, gy, labels.astype(float),
                           levels=np.arange(labels.max()) + 0.5, colors="k", linewidths=0.9)
            ax.scatter(points["x0"], points["x1"], s=4, linewidths=0,
                       c=[_class_color(c) for c in points["label"]])
            for x0, x1 in zip(balls["x0"], balls["x1"], strict=True):
                ax.add_patch(Rectangle((x0 - radius, x1 - radius), 2 * radius, 2 * radius,
                                       fill=False, edgecolor="k", linewidth=1.0))
                ax.plot([x0], [x1], marker="+", color="k", markersize=4)
            ax.set_xlim(gx[0], gx[-1])
            ax.set_ylim(gy[0], gy[-1])
            trial = int(panel["trial"].iloc[0])
            ax.set_title(f"{METHOD_LABELS.get(method, method)}, ε={radius:g} (trial {trial})",
                         fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle("decision regions (shade: confidence) and L∞ balls of radius ε around test "
                 "points; per panel the trial with the median worst-case accuracy", fontsize=8)
    return fig


def render_decision(table: Path, folder: Path) -> list[Path]:
    """PNG + PDF of the decision regions when the results table has a decision map beside it."""
    from plots.figures import save

    path = map_beside(table)
    if not path.exists():
        return []
    df = load_map(path)
    if not (df["kind"] == "cell").any():
        return []
    return save(decision_figure(df), folder, STEM)
