"""Estimates learned from the study's finished trials, then a calibration file, then the cost
model: which source wins, how pack sizes are interpolated, and what `plan` shows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from cluster import calibration, rates
from cluster.cost import estimate, pack_seconds
from cluster.plan_context import context
from cluster.planner import MIN_TIME_LIMIT_MIN, plan
from cluster.rates import GroupRate, Point, RateBook, Source, rate_book, same_model
from drosweep.cli import main
from jobs import Paths, Study, expand, parse_study, write_done
from jobs.grid import TrialSpec
from jobs.study import ClusterProfile
from studies import write_study
from trainers.spec import Method, TrainSpec

GPU = "NVIDIA H100 80GB HBM3"


def make(tmp_path: Path, model: str = GPU, **cluster: Any) -> Study:
    """Two groups of four trials, packed by four, tasks on `model`."""
    f = write_study(tmp_path, file="r.toml", name="r", methods=["regular", "robust"],
                    radii=[0.1], trials=4, training={"epochs": 10},
                    cluster={"max_pack": 4, "time_limit_min": 600, "device_model": model,
                             **cluster})
    return parse_study(f.read_text(), f)


def finish(study: Study, trial: TrialSpec, *, wall_s: float, steps: int = 60, resumed: int = 0,
           model: str | None = GPU, pack: int | None = 2) -> None:
    write_done(Paths(study.root), trial, model_sha256="0" * 64, steps=steps, epochs=10,
               wall_s=wall_s, final_loss=0.1, resumed_from=resumed, device_model=model,
               pack=pack)


def robust(study: Study) -> list[TrialSpec]:
    return [t for t in expand(study) if t.method is Method.ROBUST]


@pytest.mark.parametrize(("wanted", "recorded", "same"), [
    (GPU, GPU, True), ("nvidia_h100_80gb_hbm3", GPU, True), ("h100", GPU, True),
    ("H100", "NVIDIA H100 NVL", True), ("a100", GPU, False), ("h100 80gb", "NVIDIA H100", False),
    ("", GPU, False), ("Intel Xeon (2 threads)", "Intel Xeon (16 threads)", False)])
def test_same_model(wanted: str, recorded: str, same: bool) -> None:
    assert same_model(wanted, recorded) is same


def test_study_points_from_markers(tmp_path: Path) -> None:
    study = make(tmp_path)
    r = robust(study)
    finish(study, r[0], wall_s=6.0)                     # 0.1 s/step in a pack of 2
    finish(study, r[1], wall_s=4.0, resumed=20)         # 40 steps: 0.1 s/step
    finish(study, r[2], wall_s=1.0, pack=1)             # alone: 1/60 s/step
    finish(study, r[3], wall_s=99.0, model="Tesla V100-SXM2-16GB")  # another device: left out
    reg = [t for t in expand(study) if t.method is Method.REGULAR]
    finish(study, reg[0], wall_s=5.0, model=None, pack=None)        # an older marker: left out
    finish(study, reg[1], wall_s=5.0, steps=20, resumed=20)         # no steps trained: left out
    points = rates.study_points(Paths(study.root), expand(study), "h100")
    assert set(points) == {(Method.ROBUST, "0.1")}
    (alone, two) = points[(Method.ROBUST, "0.1")]
    assert (alone.pack, alone.samples) == (1, 1) and math.isclose(alone.seconds_per_step, 1 / 60)
    assert (two.pack, two.samples) == (2, 2) and math.isclose(two.seconds_per_step, 0.1)


def test_pack_seconds_interpolates_and_scales_by_the_model_shape(tmp_path: Path) -> None:
    study = make(tmp_path)
    cost = estimate(robust(study)[0].train_spec, study.cluster)
    rate = GroupRate(cost, Source.STUDY, (Point(2, 0.2, 3), Point(6, 0.6, 1)))
    assert rate.samples == 4 and rate.measured
    assert math.isclose(rate.pack_seconds(2), 0.2 * cost.steps)             # measured
    assert math.isclose(rate.pack_seconds(4), 0.4 * cost.steps)             # between
    shape = pack_seconds(cost, 1) / pack_seconds(cost, 2)
    assert math.isclose(rate.pack_seconds(1), 0.2 * shape * cost.steps)     # below: scaled
    shape = pack_seconds(cost, 8) / pack_seconds(cost, 6)
    assert math.isclose(rate.pack_seconds(8), 0.6 * shape * cost.steps)     # above: scaled
    assert GroupRate(cost).pack_seconds(3) == pack_seconds(cost, 3)         # built-in


def write_calibration(path: Path, model: str = GPU, sps: float = 0.5) -> Path:
    calibration.save(path, model, [calibration.Rate(Method.ROBUST, 0.1, 4, sps),
                                   calibration.Rate(Method.ROBUST, 0.3, 4, 9.0)],
                     created="2026-11-25T00:00:00", versions={"torch": "2.13.0"})
    return path


def group(the_plan: Any, method: Method) -> Any:
    return next(g for g in the_plan.groups if g.method is method)


def test_study_then_calibration_then_builtin(tmp_path: Path) -> None:
    study = make(tmp_path)
    cal = write_calibration(tmp_path / "cal.json")
    paths = Paths(study.root)
    book = rate_book(paths, expand(study), "h100", str(cal))
    the_plan = plan(expand(study), study.cluster, book)
    g = group(the_plan, Method.ROBUST)
    assert (g.source, g.samples) == ("calibration", 1)
    steps = estimate(robust(study)[0].train_spec, study.cluster).steps
    assert math.isclose(g.hours_per_trial * 3600,
                        0.5 * steps * pack_seconds(the_plan.costs[robust(study)[0].key], 1)
                        / pack_seconds(the_plan.costs[robust(study)[0].key], 4))
    assert group(the_plan, Method.REGULAR).source == "built-in"
    for t in robust(study)[:3]:
        finish(study, t, wall_s=3.0, pack=3)
    book = rate_book(paths, expand(study), "h100", str(cal))
    g = group(plan(expand(study), study.cluster, book), Method.ROBUST)
    assert (g.source, g.samples) == ("study", 3)
    assert math.isclose(g.hours_per_trial * 3600 * pack_seconds(the_plan.costs[
        robust(study)[0].key], 3) / pack_seconds(the_plan.costs[robust(study)[0].key], 1),
        3.0 / 60 * steps)
    # another device model: the study's trials do not count, the calibration still does
    book = rate_book(paths, expand(study), "a100", str(cal))
    assert group(plan(expand(study), study.cluster, book), Method.ROBUST).source == "calibration"
    assert any("measured on 'NVIDIA H100 80GB HBM3'" in n for n in book.notes)
    unknown = rate_book(paths, expand(study), None)
    assert unknown.study == {} and "device model unknown" in unknown.notes[0]


def test_shipped_calibration_is_the_default_for_its_model(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    write_calibration(shipped / "nvidia-h100-80gb-hbm3.json")
    (shipped / "broken.json").write_text("{")
    monkeypatch.setattr(rates, "CALIBRATIONS", shipped)
    study = make(tmp_path, model="h100")
    assert rates.shipped_calibration("h100") == shipped / "nvidia-h100-80gb-hbm3.json"
    assert rates.shipped_calibration("a100") is None
    assert context(study).rates.calibration_path == str(shipped / "nvidia-h100-80gb-hbm3.json")
    given = write_calibration(tmp_path / "mine.json", sps=0.25)
    assert context(study, calibration=str(given)).rates.calibration_path == str(given)
    set_in_study = make(tmp_path, model="h100", calibration=str(given))
    assert context(set_in_study).rates.calibration_path == str(given)


def test_measured_estimates_set_the_time_limit(tmp_path: Path) -> None:
    study = make(tmp_path)
    builtin = plan(expand(study), study.cluster)
    assert [a.time_limit_min for a in builtin.arrays] == [600]  # a guess keeps the full limit
    only_robust = robust(study)
    book = RateBook("h100", {(Method.ROBUST, "0.1"): (Point(4, 0.5, 4),)})
    measured = plan(only_robust, study.cluster, book)
    longest = max(t.seconds for t in measured.tasks)
    p = study.cluster
    expected = max(MIN_TIME_LIMIT_MIN,
                   math.ceil((longest / p.fill_fraction + p.signal_delay_s) / 60))
    assert [a.time_limit_min for a in measured.arrays] == [min(600, expected)]
    # 60 steps: a pack of 4 needs 400 min, of 3 300 min = fill_fraction × the limit
    slow = RateBook("h100", {(Method.ROBUST, "0.1"): (Point(1, 100.0, 1), Point(4, 400.0, 1))})
    slow_plan = plan(only_robust, study.cluster, slow)
    assert [t.k for t in slow_plan.tasks] == [3, 1]  # packs shrink to fit fill_fraction
    assert [a.time_limit_min for a in slow_plan.arrays] == [600]


def test_cli_plan_shows_the_source_of_each_row(tmp_path: Path, capsys: Any) -> None:
    study = make(tmp_path)
    for t in robust(study)[:2]:
        finish(study, t, wall_s=3.0)
    cal = write_calibration(tmp_path / "cal.json")
    assert main(["plan", str(tmp_path / "r.toml"), "--calibration", str(cal)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()
            if line.startswith(("regular", "robust"))}
    assert rows["robust"].endswith("study (2 trials)")
    assert rows["regular"].endswith("built-in")
    assert main(["plan", str(tmp_path / "r.toml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {(g["method"], g["source"], g["samples"]) for g in data["groups"]} == {
        ("regular", "built-in", 0), ("robust", "study", 2)}


def test_cli_bad_calibration_is_one_line_exit_2(tmp_path: Path, capsys: Any) -> None:
    make(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    for path in (bad, tmp_path / "missing.json"):
        assert main(["plan", str(tmp_path / "r.toml"), "--calibration", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err
    assert main(["submit", str(tmp_path / "r.toml"), "--executor", "local", "--dry-run",
                 "--calibration", str(bad)]) == 2
    assert "not a drosweep calibration file" in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


def test_a_debug_run_teaches_the_next_plan(tmp_path: Path) -> None:
    """Trained here, the DONE markers carry this machine's device model; a plan for this
    machine (local/debug executor) then estimates from them."""
    from cluster import submit

    f = write_study(tmp_path, file="r.toml", name="r", methods=["regular", "robust"],
                    radii=[0.1], trials=2, training={"epochs": 1, "n_base": 8, "temp_steps": 5},
                    cluster={"max_pack": 4, "time_limit_min": 600, "device": "cpu"})
    study = parse_study(f.read_text(), f)
    assert context(study, "debug").rates.study == {}
    result = submit(study, "debug", progress=False)
    assert result.errors == ()
    ctx = context(study, "debug")
    assert ctx.rates.device_model is not None and "thread" in ctx.rates.device_model
    the_plan = plan(expand(study), ctx.profile, ctx.rates)
    assert sorted((g.method.value, g.source, g.samples) for g in the_plan.groups) == [
        ("regular", "study", 2), ("robust", "study", 2)]
    assert all(a.time_limit_min == MIN_TIME_LIMIT_MIN for a in the_plan.arrays)
    # on SLURM with CPU tasks the device model is unknown: the constants are used
    assert {g.source for g in plan(expand(study), context(study).profile,
                                   context(study).rates).groups} == {"built-in"}


def test_calibration_reaches_other_radii_log_linearly_or_from_the_nearest() -> None:
    cal = calibration.Calibration(GPU, "2026-11-26T00:00:00", {}, (
        calibration.Rate(Method.ROBUST, 0.1, 1, 0.01), calibration.Rate(Method.ROBUST, 0.3, 1, 1.0),
        calibration.Rate(Method.ROBUST, 0.3, 8, 5.0),
        calibration.Rate(Method.ADVERSARIAL, 0.1, 1, 0.004),
        calibration.Rate(Method.ADVERSARIAL, 0.1, 51, 0.0075)))
    book = RateBook(GPU, {}, cal)
    cost = estimate(TrainSpec(Method.ROBUST, 0.2, 0), ClusterProfile())
    mid = book.rate(Method.ROBUST, 0.2, cost)
    assert mid.source is Source.CALIBRATION_RADII
    # halfway between 0.01 s and 1 s in log: 0.1 s; only pack 1 was measured at both radii
    assert [(p.pack, round(p.seconds_per_step, 12)) for p in mid.points] == [(1, 0.1)]
    below = book.rate(Method.ROBUST, 0.05, cost)
    assert [(p.pack, p.seconds_per_step) for p in below.points] == [(1, 0.01)]
    above = book.rate(Method.ROBUST, 0.4, cost)
    assert [(p.pack, p.seconds_per_step) for p in above.points] == [(1, 1.0), (8, 5.0)]
    adversarial = book.rate(Method.ADVERSARIAL, 0.3, cost)
    assert (adversarial.source, [p.pack for p in adversarial.points]) == (
        Source.CALIBRATION_RADII, [1, 51])
    assert book.rate(Method.ROBUST, 0.3, cost).source is Source.CALIBRATION
    assert book.rate(Method.LANGEVIN, 0.1, cost).source is Source.BUILTIN
