"""Decision maps of 2-D studies: the representative trials, the map table and its figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from common.atomic import atomic_torch_save, sha256_file
from jobs.paths import Paths
from plots import ResultsError
from plots.decision import decision_figure, map_beside, render_decision
from reduce.decision_map import (
    SELECTED_BY,
    MapSettings,
    ball_points,
    decision_map,
    representatives,
    write_map,
)
from trainers.data import Dataset
from trainers.model import build_model

METHODS = ("regular", "robust")
RADII = (0.1, 0.2)


def results(trials: int = 5) -> pd.DataFrame:
    """Worst-case accuracy rises with the trial number; trial 0 of robust at 0.2 failed."""
    rows = []
    for method in METHODS:
        for radius in RADII:
            for trial in range(trials):
                key = f"{method}/eps_{radius if method == 'robust' else 0}/trial_{trial}"
                failed = method == "robust" and radius == 0.2 and trial == 0
                for metric, value in (("clean_accuracy", 0.9), ("worst_case_accuracy",
                                                                0.1 * trial)):
                    rows.append({"method": method, "radius": radius, "trial": trial,
                                 "metric": metric, "value": value, "key": key,
                                 "model_sha256": f"sha-{key}", "failed_training": failed})
    rows.append({"method": "robust", "radius": 0.1, "trial": 9, "metric": "reduce_error",
                 "value": np.nan, "key": "robust/eps_0.1/trial_9", "model_sha256": "x",
                 "failed_training": False})
    return pd.DataFrame(rows)


def test_the_median_trial_represents_each_method_and_radius() -> None:
    reps = representatives(results())
    picked = {(r.method, r.radius): r.trial for r in reps}
    assert picked == {("regular", 0.1): 2, ("regular", 0.2): 2, ("robust", 0.1): 2,
                      ("robust", 0.2): 2}  # of trials 1..4 (0 failed): the lower middle
    four = results(trials=4)
    assert {r.trial for r in representatives(four)
            if (r.method, r.radius) == ("regular", 0.1)} == {1}


def test_ball_points_lie_near_the_other_class_and_apart() -> None:
    x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [0.0, 0.5], [3.0, 0.0], [3.2, 0.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    # 0, 1 and 3 are closest to the other class, but 1 and 3 are too close to 0; 2 is far
    # from class 1 (never picked before 4, which is nearer to class 0)
    assert list(ball_points(x, y, 2)) == [0, 4]
    assert len(ball_points(x, np.zeros(6, dtype=np.int64), 2)) == 0


def _two_blobs() -> Dataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=gen)
    y = (x[:, 0] > 0).long()
    return Dataset(x, y, x[:100], y[:100], ("0", "1"))


def test_map_table_holds_a_grid_per_model_and_the_test_points(tmp_path: Path) -> None:
    data = _two_blobs()
    table, paths = [], {}
    for method, radius in (("regular", 0.1), ("robust", 0.1)):
        key = f"{method}/eps_{0 if method == 'regular' else radius}/trial_0"
        model_file = tmp_path / f"{method}.pt"
        atomic_torch_save(build_model(hidden=8, n_in=2, n_out=2, seed=1).state_dict(), model_file)
        paths[key] = str(model_file)
        table.append({"method": method, "radius": radius, "trial": 0, "metric":
                      "worst_case_accuracy", "value": 0.5, "key": key,
                      "model_sha256": sha256_file(model_file), "failed_training": False})
    settings = MapSettings(resolution=11, points=50, balls=3)
    df = decision_map(pd.DataFrame(table), data, paths, "s", "f", settings=settings)
    cells = df[df["kind"] == "cell"]
    assert len(cells) == 2 * 11 * 11 and set(cells["selected_by"]) == {SELECTED_BY}
    assert cells["confidence"].between(0.5, 1).all() and set(cells["label"]) <= {0, 1}
    points = df[df["kind"] == "point"]
    assert len(points) == 50 and points["ball"].sum() == 3
    # the grid covers every point, with a margin
    assert cells["x0"].min() < data.x_train[:, 0].min() and cells["x1"].max() > \
        data.x_train[:, 1].max()
    # a model file that no longer matches its sha256 gets no map; the others still do
    (tmp_path / "robust.pt").write_bytes(b"tampered")
    df2 = decision_map(pd.DataFrame(table), data, paths, "s", "f", settings=settings)
    assert set(df2[df2["kind"] == "cell"]["method"]) == {"regular"}
    parquet = Paths(tmp_path).decision_map
    assert parquet == map_beside(Paths(tmp_path).metrics_parquet)
    parquet.parent.mkdir()
    write_map(df, parquet, Paths(tmp_path).decision_map_csv)
    assert pd.read_parquet(parquet).shape == df.shape
    assert len(pd.read_csv(Paths(tmp_path).decision_map_csv)) == len(df)
    with pytest.raises(ValueError, match="2 features"):
        decision_map(pd.DataFrame(table), Dataset(torch.zeros(4, 3), torch.zeros(4).long(),
                                                  torch.zeros(4, 3), torch.zeros(4).long(),
                                                  ("0", "1")), paths, "s", "f")


def fake_map(methods: tuple[str, ...] = ("regular", "robust", "adversarial", "langevin"),
             radii: tuple[float, ...] = (0.1, 0.3)) -> pd.DataFrame:
    """Regular splits the plane at x0 = 0.4, the others at x0 = 0."""
    g = np.linspace(-1, 1, 21)
    xx, yy = np.meshgrid(g, g)
    parts = []
    for method in methods:
        for radius in radii:
            cut = 0.4 if method == "regular" else 0.0
            parts.append(pd.DataFrame({
                "kind": "cell", "method": method, "radius": radius, "trial": 3,
                "x0": xx.ravel(), "x1": yy.ravel(), "label": (xx.ravel() > cut).astype(int),
                "confidence": 0.5 + np.minimum(np.abs(xx.ravel() - cut), 0.5), "ball": False}))
    parts.append(pd.DataFrame({"kind": "point", "method": "", "radius": np.nan, "trial": -1,
                               "x0": [-0.5, 0.2, 0.6], "x1": [0.0, 0.1, -0.3],
                               "label": [0, 0, 1], "confidence": np.nan,
                               "ball": [False, True, True]}))
    return pd.concat(parts, ignore_index=True)


def test_figure_has_a_panel_per_radius_and_method_with_square_balls() -> None:
    fig = decision_figure(fake_map())
    axes = fig.axes
    assert len(axes) == 2 * 4
    assert [ax.get_title().split(",")[0] for ax in axes[:4]] == \
        ["regular", "robust (smoothed)", "adversarial (PGD)", "Langevin"]
    assert "ε=0.3" in axes[4].get_title() and "trial 3" in axes[4].get_title()
    for row, radius in enumerate((0.1, 0.3)):
        for ax in axes[4 * row:4 * row + 4]:
            assert any(isinstance(a, AxesImage) for a in ax.get_children())
            squares = [p for p in ax.patches if isinstance(p, Rectangle)]
            assert len(squares) == 2
            for sq in squares:  # L-inf ball: a square of side 2 eps around the point
                assert sq.get_width() == pytest.approx(2 * radius)
                assert sq.get_height() == pytest.approx(2 * radius)
            assert ax.collections  # the boundary contour and the test points


def test_render_writes_png_and_pdf_only_when_a_map_is_there(tmp_path: Path) -> None:
    table = tmp_path / "results" / "metrics.parquet"
    table.parent.mkdir()
    assert render_decision(table, tmp_path / "figures") == []
    fake_map(methods=("regular", "robust"), radii=(0.2,)).to_parquet(map_beside(table))
    out = render_decision(table, tmp_path / "figures")
    assert sorted(p.name for p in out) == ["decision_regions.pdf", "decision_regions.png"]
    assert all(p.stat().st_size > 1000 for p in out)
    pd.DataFrame({"a": [1]}).to_parquet(map_beside(table))
    with pytest.raises(ResultsError, match="not a drosweep decision map"):
        render_decision(table, tmp_path / "figures")
