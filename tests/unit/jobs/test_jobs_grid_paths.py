"""Grid expansion, keys, seeds, and the Paths class (nothing escapes the root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobs import (
    Paths,
    StudyError,
    check_root_writable,
    evaluation_radii,
    expand,
    parse_key,
    parse_study,
    radius_tag,
    trial_key,
)
from studies import study_text
from trainers.spec import Method

G: dict[str, Any] = {"name": "g", "dataset": None, "methods": ["regular", "robust", "langevin"],
                     "radii": [0.01, 0.1, 0.25], "trials": 4, "base_seed": 7}


def study(**changes: Any):
    return parse_study(study_text("/tmp/unused", **{**G, **changes}), Path("g.toml"))


def test_regular_once_per_trial() -> None:
    specs = expand(study())
    keys = [s.key for s in specs]
    assert len(specs) == 4 + 2 * 3 * 4
    assert keys[:4] == [f"regular/eps_0/trial_{i}" for i in range(4)]
    assert "robust/eps_0.01/trial_0" in keys and "langevin/eps_0.25/trial_3" in keys
    assert len(set(keys)) == len(keys)
    regular = specs[0]
    assert regular.radius == 0.0 and regular.method is Method.REGULAR
    assert evaluation_radii(study(), regular) == (0.01, 0.1, 0.25)
    assert evaluation_radii(study(), specs[4]) == (0.01,)


def test_regular_per_radius() -> None:
    specs = expand(study(regular_per_radius=True))
    assert len(specs) == 3 * 3 * 4
    assert specs[0].key == "regular/eps_0.01/trial_0" and specs[0].radius == 0.01


def test_seeds_stable_and_distinct() -> None:
    a = {s.key: s.train_spec.seed for s in expand(study())}
    assert len(set(a.values())) == len(a)
    # more trials/radii/methods do not move existing seeds
    b = {s.key: s.train_spec.seed for s in expand(study(trials=9, radii=[0.01, 0.1, 0.25, 0.3]))}
    assert all(b[k] == v for k, v in a.items())
    # the base seed moves all of them
    c = {s.key: s.train_spec.seed for s in expand(study(base_seed=8))}
    assert all(c[k] != v for k, v in a.items())


def test_train_spec_carries_study_settings() -> None:
    s = study(dataset="synthetic", training={"epochs": 3})
    for t in expand(s):
        assert t.train_spec.settings.epochs == 3 and t.train_spec.dataset == "synthetic"
        t.train_spec.validate()


@pytest.mark.parametrize(("radius", "tag"), [(0.01, "0.01"), (0.1, "0.1"), (1.0, "1"),
                                              (0.0, "0"), (1e-05, "1e-05"), (0.15, "0.15")])
def test_radius_tag(radius: float, tag: str) -> None:
    assert radius_tag(radius) == tag
    key = trial_key(Method.ROBUST, radius, 3)
    assert parse_key(key) == (Method.ROBUST, radius, 3)


@pytest.mark.parametrize("key", [
    "../etc/passwd", "robust/eps_0.1/trial_1/../../..", "robust/eps_0.1/trial_-1",
    "robust/eps_0.10/trial_1", "/abs/eps_0.1/trial_1", "robust/eps_0.1/trial_01",
    "robust\\eps_0.1\\trial_1", "cheat/eps_0.1/trial_1", "robust/eps_../trial_1", "",
])
def test_keys_cannot_escape(tmp_path: Path, key: str) -> None:
    with pytest.raises(StudyError):
        Paths(tmp_path).trial_dir(key)


def test_paths_layout(tmp_path: Path) -> None:
    p = Paths(tmp_path)
    spec = expand(study())[5]
    d = tmp_path / "runs" / spec.key
    assert p.trial_dir(spec) == d == p.trial_dir(spec.key)
    assert p.model(spec) == d / "model.pt" and p.checkpoint(spec) == d / "ckpt.pt"
    assert p.done(spec) == d / "DONE.json" and p.failed(spec) == d / "FAILED.json"
    assert p.spec_file(spec) == d / "spec.json"
    assert p.study_file == tmp_path / "study.toml" and p.ledger == tmp_path / "ledger.jsonl"
    assert p.metrics_parquet == tmp_path / "results" / "metrics.parquet"
    assert p.metrics_csv == tmp_path / "results" / "metrics.csv"
    assert p.figures == tmp_path / "figures" and p.report == tmp_path / "report.md"
    assert p.logs == tmp_path / "logs"
    for path in (p.model(spec), p.done(spec), p.ledger, p.report):
        assert tmp_path in path.parents


def test_root_writable(tmp_path: Path) -> None:
    check_root_writable(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StudyError, match="not a directory"):
        check_root_writable(blocker / "root")
    with pytest.raises(StudyError, match="not writable"):
        check_root_writable("/proc/1/drosweep-root")


def test_trial_files_walk_and_links(tmp_path: Path) -> None:
    """One walk lists each trial folder's files; behind a symbolic link (a trial folder or a
    folder above it) the walk does not look, so any file may be there."""
    paths = Paths(tmp_path / "root")
    plain, empty = "robust/eps_0.1/trial_0", "robust/eps_0.1/trial_1"
    paths.trial_dir(plain).mkdir(parents=True)
    paths.done(plain).write_text("{}")
    paths.trial_dir(empty).mkdir()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "eps_0.1" / "trial_0").mkdir(parents=True)
    (paths.runs / "adversarial").symlink_to(elsewhere)
    (paths.runs / "robust" / "eps_0.2").mkdir()
    (paths.runs / "robust" / "eps_0.2" / "trial_0").symlink_to(elsewhere / "eps_0.1" / "trial_0")
    files = paths.trial_files()
    assert files.may_hold(plain, "DONE.json") and not files.may_hold(plain, "FAILED.json")
    assert not files.may_hold(empty, "DONE.json")
    assert not files.may_hold("robust/eps_0.3/trial_0", "DONE.json")  # no folder at all
    assert files.may_hold("robust/eps_0.2/trial_0", "DONE.json")      # a linked trial folder
    assert files.may_hold("adversarial/eps_0.1/trial_0", "DONE.json")  # below a linked folder
    assert paths.trial_dir(plain) == paths.runs / plain
    with pytest.raises(StudyError, match="resolves outside"):
        paths.trial_dir("adversarial/eps_0.1/trial_0")
