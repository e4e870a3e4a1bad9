"""Figures and report from a hand-made results table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from plots import (
    ResultsError,
    Verdict,
    bands,
    check_claims,
    failure_rates,
    metric_figure,
    render,
    trial_values,
)

METHODS = ("regular", "robust", "adversarial", "langevin")
RADII = (0.05, 0.1, 0.2)
ACC = ("clean_accuracy", "worst_case_accuracy", "mean_accuracy", "pgd_accuracy")
LIP = ("lipschitz_lower", "lipschitz_search", "lipschitz_upper")


def fake_table(trials: int = 5, seed: int = 0) -> pd.DataFrame:
    """robust beats regular under attack; trial 0 of robust at 0.2 failed to train."""
    rng = np.random.default_rng(seed)
    rows = []
    for m_i, method in enumerate(METHODS):
        for radius in RADII:
            for trial in range(trials):
                failed = method == "robust" and radius == 0.2 and trial == 0
                base = 0.1 if failed else 0.8
                robust_gain = 0.2 if method == "robust" else 0.0
                values = {"clean_accuracy": base - 0.01 * m_i,
                          "worst_case_accuracy": max(0.0, base - radius * 2 + robust_gain),
                          "mean_accuracy": base - radius,
                          "pgd_accuracy": max(0.0, base - radius * 3 + robust_gain),
                          "lipschitz_lower": 2.0 + m_i, "lipschitz_search": 20.0 / (1 + m_i),
                          "lipschitz_upper": 400.0 + 10 * m_i}
                for metric, value in values.items():
                    noisy = value + rng.uniform(-0.02, 0.02) if metric in ACC else value
                    rows.append({"method": method, "radius": radius, "trial": trial,
                                 "metric": metric, "value": float(np.clip(noisy, 0, None)),
                                 "key": f"{method}/eps_{radius}/trial_{trial}",
                                 "failed_training": failed, "settings": '{"seed": 0}',
                                 "settings_hash": "abc", "study": "fake", "error": ""})
    rows.append({"method": "langevin", "radius": 0.1, "trial": 9, "metric": "reduce_error",
                 "value": np.nan, "key": "langevin/eps_0.1/trial_9", "failed_training": False,
                 "settings": '{"seed": 0}', "settings_hash": "abc", "study": "fake",
                 "error": "model.pt: not a readable torch file"})
    return pd.DataFrame(rows)


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    path = tmp_path / "results" / "metrics.parquet"
    path.parent.mkdir()
    fake_table().to_parquet(path)
    return path


def test_render_writes_png_and_pdf_per_metric_and_the_report(table: Path, tmp_path: Path) -> None:
    result = render(table, tmp_path / "figures", tmp_path / "report.md",
                    study_text='name = "fake"\n', threshold=0.12)
    names = {p.name for p in result.figures}
    for stem in (*ACC, *LIP, "failed_training_rate"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    assert all(p.stat().st_size > 1000 for p in result.figures)
    text = (tmp_path / "report.md").read_text()
    assert "![" in text and "(figures/worst_case_accuracy.png)" in text
    assert "| regular | 0.05 |" in text
    assert "PASS: median worst-case accuracy of robust > regular beyond the spread at ε=0.1" \
        in text and "max − min" in text
    assert "langevin/eps_0.1/trial_9" in text and "not a readable torch file" in text
    assert 'name = "fake"' in text
    assert not list((tmp_path / "figures").glob(".*"))  # no temp files left


def test_one_median_line_per_method_and_bands_within_unit_interval(table: Path) -> None:
    df = pd.read_parquet(table)
    for metric in ACC:
        band = bands(df, metric)
        assert ((band[["q10", "q25", "median", "q75", "q90"]] >= 0)
                & (band[["q10", "q25", "median", "q75", "q90"]] <= 1)).all().all()
        assert (band["q10"] <= band["q25"]).all() and (band["q75"] <= band["q90"]).all()
        fig = metric_figure(band, metric)
        ax = fig.axes[0]
        labels = [line.get_label() for line in ax.get_lines()]
        assert len(labels) == len(METHODS) == len(set(labels))
        assert ax.get_ylim() == (0.0, 1.0)
        polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(polys) == 2 * len(METHODS)
        for poly in polys:
            ys = np.concatenate([p.vertices[:, 1] for p in poly.get_paths()])
            assert ys.min() >= 0 and ys.max() <= 1
    lip = metric_figure(bands(df, "lipschitz_upper"), "lipschitz_upper")
    assert lip.axes[0].get_yscale() == "log"
    colors = {line.get_label(): line.get_color() for line in lip.axes[0].get_lines()}
    assert colors["regular"] == "tab:blue" and colors["robust (smoothed)"] == "tab:red"


def test_failed_trainings_are_excluded_from_bands_unless_asked(table: Path) -> None:
    df = pd.read_parquet(table)
    excluded = bands(df, "clean_accuracy")
    included = bands(df, "clean_accuracy", include_failed=True)
    pick = (excluded["method"] == "robust") & (excluded["radius"] == 0.2)
    assert int(excluded[pick]["n"].iloc[0]) == 4
    assert int(included[pick]["n"].iloc[0]) == 5
    assert float(excluded[pick]["q10"].iloc[0]) > 0.7 > float(included[pick]["q10"].iloc[0])
    rates = failure_rates(df)
    rate = rates[(rates["method"] == "robust") & (rates["radius"] == 0.2)]["rate"].iloc[0]
    assert rate == pytest.approx(0.2)


def test_claims_pass_fail_and_skip() -> None:
    values = trial_values(fake_table())
    lines = {c.text.split(": ")[0]: c.verdict for c in check_claims(values)}
    assert lines["median worst-case accuracy of robust > regular beyond the spread at ε=0.2"] \
        is Verdict.PASS
    assert lines["median Lipschitz estimate (pattern search) of robust < regular beyond the "
                 "spread at ε=0.1"] is Verdict.PASS
    assert not any("ε=0.05" in text for text in lines)  # claims concern eps >= 0.1
    worse = values.copy()
    worse.loc[(worse["method"] == "robust") & (worse["metric"] == "pgd_accuracy"), "value"] = 0.0
    verdicts = {c.text.split(": ")[0]: c.verdict for c in check_claims(worse)}
    assert verdicts["median PGD accuracy of robust > regular beyond the spread at ε=0.1"] \
        is Verdict.FAIL
    only_regular = values[values["method"] == "regular"]
    assert {c.verdict for c in check_claims(only_regular)} == {Verdict.SKIP}


def test_missing_or_foreign_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no results table"):
        render(tmp_path / "nope.parquet", tmp_path / "figures")
    bad = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(bad)
    with pytest.raises(ResultsError, match="not a drosweep results table"):
        render(bad, tmp_path / "figures")
