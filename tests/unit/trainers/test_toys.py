"""The 2-D toy sets: drawn from the seed alone, shaped as the original's, and through the whole
path (plan, local submit, reduce, plot) with the decision-region figure."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from drosweep.cli import main
from jobs import Paths, StudyError, load_study
from studies import write_study
from trainers.data import load_dataset
from trainers.datasets import DataError, get_source, parse_options
from trainers.datasets.toys import TOY_OPTIONS, draw_toy

TOYS = tuple(TOY_OPTIONS)


@pytest.mark.parametrize("name", TOYS)
def test_a_toy_set_is_a_function_of_its_settings(name: str) -> None:
    options = parse_options(name, {}, seed=5)
    a = load_dataset(name, options=options)
    b = load_dataset(name, options=options)
    assert a.n_features == 2 and a.n_classes == 2
    for x, y in ((a.x_train, b.x_train), (a.y_test, b.y_test)):
        assert bool((x == y).all())
    other = load_dataset(name, options=parse_options(name, {}, seed=6))
    assert not bool((other.x_train == a.x_train).all())
    # standardized on the training points
    assert np.allclose(a.x_train.double().mean(0).numpy(), 0, atol=1e-6)
    assert np.allclose(a.x_train.double().std(0, unbiased=False).numpy(), 1, atol=1e-5)
    # more test points leave the training points as they were
    raw = draw_toy(options)
    more = draw_toy(parse_options(name, {"n_test": options.n_test + 50}, seed=5))
    assert np.array_equal(raw[0], more[0]) and len(more[3]) == options.n_test + 50
    assert set(np.unique(raw[1])) == {0, 1}
    shape = get_source(name).shape(options)
    assert (shape.train_rows, shape.test_rows) == (len(a.y_train), len(a.y_test))


def test_the_shapes_are_the_originals() -> None:
    moons = parse_options("moons", {}, seed=0)
    assert (moons.n_train, moons.n_test, moons.sigma, moons.radius, moons.shift_x,
            moons.shift_y) == (2000, 3000, 0.2, 2.0, 2.0, -1.0)
    x, y, _, _ = draw_toy(moons)
    back = x - np.where(y[:, None] == 1, [2.0, -1.0], 0.0)
    assert (back[y == 1, 1] > 0).all() and (back[y == 0, 1] <= 0).all()   # upper arc moved
    assert abs(np.linalg.norm(back, axis=1).mean() - 2.0) < 0.05
    x, y, _, _ = draw_toy(parse_options("gaussians", {}, seed=0))
    assert np.allclose(x[y == 1].mean(0), [1, 1], atol=0.1)
    assert np.allclose(x[y == 0].std(0), [0.5, 0.5], atol=0.05)
    x, y, _, _ = draw_toy(parse_options("doughnut", {}, seed=0))
    assert np.linalg.norm(x[y == 1], axis=1).mean() < 0.6
    assert abs(np.linalg.norm(x[y == 0], axis=1).mean() - 2.0) < 0.1
    x, y, _, _ = draw_toy(parse_options("saw", {}, seed=0))
    tooth = np.where(x[:, 0] < 1, x[:, 0], np.where(x[:, 0] < 2, 2 - x[:, 0], x[:, 0] - 2))
    assert np.median(np.abs(x[y == 0, 1] - tooth[y == 0])) < 0.1
    assert np.median(np.abs(x[y == 1, 1] - 1 - tooth[y == 1])) < 0.1
    x, y, _, _ = draw_toy(parse_options("mix", {}, seed=0))
    assert np.allclose(x[y == 1].mean(0), [1.5, 1.5], atol=0.05)
    assert np.allclose(x[y == 1].std(0), [0.15, 0.15], atol=0.02)


@pytest.mark.parametrize("table, message", [
    ({"sigma": 0}, "data.sigma': must be > 0"),
    ({"n_train": 1}, "data.n_train': must be an integer in [2,"),
    ({"shift": [1, 2]}, "data.shift': unknown setting of data set 'moons'"),
    ({"radius": "2"}, "data.radius': must be a finite number"),
])
def test_bad_settings_are_one_line(table: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        parse_options("moons", table, seed=0)


def test_a_study_names_the_bad_key(tmp_path: Path) -> None:
    f = write_study(tmp_path, file="s.toml", root="r", name="t", dataset="saw",
                    data={"radius": 1.0})
    with pytest.raises(StudyError, match=re.escape("data.radius': unknown setting of data set 'saw'")):
        load_study(f)


ALL = '["regular", "robust", "adversarial", "langevin"]'
# a toy study, small and on one CPU thread: write_study(tmp_path, **toy_study(name, methods))
TOY_TRAINING = {"epochs": 2, "hidden": 8, "batch_size": 50, "n_base": 4, "temp_steps": 8,
                "pgd_steps": 3, "langevin_points": 4, "checkpoint_every": 100}
TOY_CLUSTER = {"gpus_per_node": 0, "gpus_per_task": 0, "cpus_per_task": 1, "mem_gb": 2,
               "device": "cpu", "local_parallelism": 1, "max_pack": 1}
TOY_EVALUATION = {"ball_samples": 20, "mean_samples": 10, "pgd_steps": 3, "ga_population": 6,
                  "ga_generations": 3, "ga_elite": 1}


def toy_study(name: str, methods: str) -> dict[str, Any]:
    return {"name": f"{name}-path", "dataset": name, "methods": json.loads(methods),
            "radii": [0.2], "base_seed": 4, "data": {"n_train": 200, "n_test": 60},
            "training": TOY_TRAINING, "cluster": TOY_CLUSTER, "evaluation": TOY_EVALUATION}


@pytest.mark.parametrize("name, methods", [("moons", ALL)] + [
    (toy, '["regular", "robust"]') for toy in TOYS if toy != "moons"])
def test_plan_submit_reduce_plot(tmp_path: Path, capsys: Any, name: str, methods: str) -> None:
    f = write_study(tmp_path, **toy_study(name, methods))
    assert main(["plan", str(f)]) == 0
    assert main(["submit", str(f), "--executor", "local", "--no-progress"]) == 0
    # 8 steps do not teach every toy set (some models end below chance, i.e. failed trainings,
    # which the decision map leaves out): flag none, the path is what is tested here
    assert main(["reduce", str(f), "--no-progress", "--failed-below", "0"]) == 0
    capsys.readouterr()
    assert main(["plot", str(f)]) == 0
    paths = Paths(load_study(f).root)
    df = pd.read_parquet(paths.metrics_parquet)
    assert "reduce_error" not in set(df["metric"])
    decision = pd.read_parquet(paths.decision_map)
    cells = decision[decision["kind"] == "cell"]
    expected = set(json.loads(methods))
    assert set(cells["method"]) == expected and set(cells["radius"]) == {0.2}
    assert set(cells["key"]) == set(df["key"])   # one trial each: it is the median one
    points = decision[decision["kind"] == "point"]
    assert len(points) == 60 and points["ball"].sum() == 5
    assert (paths.figures / "decision_regions.png").stat().st_size > 1000
    assert (paths.figures / "decision_regions.pdf").is_file()


def test_a_study_of_more_features_has_no_decision_map(tmp_path: Path) -> None:
    f = write_study(tmp_path, **{**toy_study("moons", '["regular"]'), "dataset": "synthetic",
                                 "data": None})
    assert main(["submit", str(f), "--executor", "local", "--no-progress"]) == 0
    assert main(["reduce", str(f), "--no-progress"]) == 0
    assert main(["plot", str(f)]) == 0
    paths = Paths(load_study(f).root)
    assert paths.metrics_parquet.is_file() and not paths.decision_map.exists()
    assert not (paths.figures / "decision_regions.png").exists()


def test_the_demo_study_of_two_moons_loads() -> None:
    study = load_study(Path(__file__).resolve().parents[3] / "studies" / "moons.toml")
    assert study.dataset == "moons" and {m.value for m in study.methods} >= {
        "regular", "robust", "adversarial"}   # the methods its claims compare
    assert min(study.radii) >= 0.1   # the claims of the report concern eps >= 0.1
    assert get_source("moons").shape(study.data_options).train_rows == 2000
