"""The reduction of a study: tidy rows, incremental runs, bad model files, foreign tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch
from reduce_support import QUICK, finish_all, mark_done, save_model, tiny_study

from jobs import Paths, expand
from reduce import METRICS, ReduceError, ReduceOptions, reduce_study

OPTS = ReduceOptions(progress=False)


def test_tidy_rows_for_every_model_and_radius(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    finish_all(study)
    summary = reduce_study(study, OPTS, QUICK)
    df = pd.read_parquet(summary.parquet)
    assert summary.evaluated == 6 and summary.reused == 0 and not summary.errors
    # regular trained once per trial, evaluated at both radii; robust at its own radius
    assert len(df) == (2 * 2 + 2 * 2) * len(METRICS) == summary.rows
    assert set(df["metric"]) == set(METRICS)
    regular = df[df["method"] == "regular"]
    assert sorted(regular["radius"].unique()) == [0.05, 0.1]
    assert set(regular["trained_radius"]) == {0.0}
    clean = regular[regular["metric"] == "clean_accuracy"].groupby("trial")["value"].nunique()
    assert (clean == 1).all()  # radius-free metrics repeated, not re-drawn
    acc = df[df["metric"].str.endswith("accuracy")]["value"]
    assert ((acc >= 0) & (acc <= 1)).all()
    assert df["settings_hash"].nunique() == 1 and df["model_sha256"].str.len().eq(64).all()
    csv = pd.read_csv(summary.csv)
    assert list(csv.columns) == list(df.columns) and len(csv) == len(df)


def test_incremental_skips_unchanged_models(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    trials = finish_all(study)
    first = reduce_study(study, OPTS, QUICK)
    before = first.parquet.read_bytes()
    again = reduce_study(study, OPTS, QUICK)
    assert (again.evaluated, again.reused) == (0, 6)
    pd.testing.assert_frame_equal(pd.read_parquet(first.parquet), pd.read_parquet(again.parquet))
    assert len(before) > 0
    # a retrained model (new sha) is the only one evaluated again
    paths = Paths(study.root)
    new_sha = save_model(paths, trials[3], seed=99)
    third = reduce_study(study, OPTS, QUICK)
    assert (third.evaluated, third.reused) == (1, 5)
    df = pd.read_parquet(third.parquet)
    assert set(df[df["key"] == trials[3].key]["model_sha256"]) == {new_sha}
    # other settings: everything again, nothing of the old settings kept
    other = dataclasses.replace(QUICK, seed=1)
    fourth = reduce_study(study, OPTS, other)
    assert fourth.evaluated == 6
    assert set(pd.read_parquet(fourth.parquet)["settings_hash"]) == {other.digest}
    # without the Lipschitz estimates: their rows are absent, and nothing is missing the next time
    no_lip = dataclasses.replace(QUICK, lipschitz=False)
    assert reduce_study(study, OPTS, no_lip).evaluated == 6
    assert not pd.read_parquet(first.parquet)["metric"].str.startswith("lipschitz").any()
    assert reduce_study(study, OPTS, no_lip).evaluated == 0


@pytest.mark.parametrize("content, reason", [
    (b"not a torch file at all", "not a readable torch file"),
    (None, "unexpected keys"),  # a checkpoint-like dict
    ("shapes", "has shape"),
    ("truncated", "not a readable torch file"),
])
def test_bad_model_file_fails_that_trial_only(tmp_path: Path, content: object,
                                              reason: str) -> None:
    study = tiny_study(tmp_path / "s")
    trials = finish_all(study)
    paths = Paths(study.root)
    bad = trials[2]
    target = paths.model(bad)
    if content is None:
        torch.save({"model": {}, "step": 3}, target)
    elif content == "shapes":
        model = torch.nn.Linear(3, 2)
        torch.save({f"layer{i}.{p}": getattr(model, p) for i in (1, 2, 3)
                    for p in ("weight", "bias")}, target)
    elif content == "truncated":
        target.write_bytes(target.read_bytes()[:300])
    else:
        assert isinstance(content, bytes)
        target.write_bytes(content)
    mark_done(paths, bad)
    summary = reduce_study(study, OPTS, QUICK)
    assert [k for k, _ in summary.errors] == [bad.key]
    assert reason in summary.errors[0][1]
    df = pd.read_parquet(summary.parquet)
    assert df[df["metric"] != "reduce_error"]["key"].nunique() == 5
    # fixed file: the failed trial is retried, the rest reused
    save_model(paths, bad, seed=5)
    fixed = reduce_study(study, OPTS, QUICK)
    assert (fixed.evaluated, fixed.reused, fixed.errors) == (1, 5, ())


def test_model_replaced_after_its_done_marker_is_reported(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    trials = finish_all(study)
    paths = Paths(study.root)
    torch.save(torch.load(paths.model(trials[1]), weights_only=True), paths.model(trials[0]))
    summary = reduce_study(study, OPTS, QUICK)
    assert summary.errors[0][0] == trials[0].key and "does not match its DONE" in summary.errors[0][1]


def test_failed_training_is_flagged_and_kept(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    trials = finish_all(study)
    save_model(Paths(study.root), trials[0], seed=0, scale=0.0)  # constant output: ~1/12
    summary = reduce_study(study, OPTS, QUICK)
    assert summary.failed_training == (trials[0].key,)
    df = pd.read_parquet(summary.parquet)
    assert df[df["key"] == trials[0].key]["failed_training"].all()
    assert not df[df["key"] != trials[0].key]["failed_training"].any()


def test_incomplete_study_needs_partial(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    paths = Paths(study.root)
    trials = expand(study)
    save_model(paths, trials[0], seed=0)
    with pytest.raises(ReduceError, match="incomplete: 1 of 6 trials done"):
        reduce_study(study, OPTS, QUICK)
    summary = reduce_study(study, dataclasses.replace(OPTS, partial=True), QUICK)
    assert summary.evaluated == 1 and len(summary.missing) == 5


def test_table_of_another_study_or_newer_format_is_refused(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    finish_all(study)
    summary = reduce_study(study, OPTS, QUICK)
    other = tiny_study(tmp_path / "s", name="other")
    with pytest.raises(ReduceError, match="belongs to another study"):
        reduce_study(other, OPTS, QUICK)
    df = pd.read_parquet(summary.parquet)
    df["format"] = 99
    df.to_parquet(summary.parquet)
    with pytest.raises(ReduceError, match="format 99 is newer"):
        reduce_study(study, OPTS, QUICK)
    summary.parquet.write_bytes(b"garbage")
    with pytest.raises(ReduceError, match="cannot read the results table"):
        reduce_study(study, OPTS, QUICK)


def test_interrupted_reduction_leaves_the_previous_table(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    finish_all(study)
    summary = reduce_study(study, OPTS, QUICK)
    before = summary.parquet.read_bytes()

    def interrupted(fn, tasks):  # type: ignore[no-untyped-def]
        yield fn(tasks[0])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reduce_study(study, OPTS, dataclasses.replace(QUICK, seed=3), mapper=interrupted)
    assert summary.parquet.read_bytes() == before
