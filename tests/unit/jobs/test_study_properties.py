"""Properties of the study reader (Hypothesis): for any value of a key, the reader accepts it
exactly when it lies within the key's bounds, and anything else is one StudyError line.

The fixed examples of test_study_bounds.py pin chosen values; these draw from the whole range,
so a bound moved (a maximum raised, a comparison turned) fails on the values in between.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from study_fuzz import _keys, _with

from jobs import StudyError, expand, parse_study
from jobs.limits import MAX_GRID_TRIALS, MAX_RADII, MAX_TRIALS, grid_size
from jobs.radius import radius_tag
from jobs.study import MAX_CPUS_PER_TASK
from studies import study_text
from trainers.spec import MAX_HIDDEN, MAX_RADIUS

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# regular and adversarial only: no N(eps) limit, so the radius bounds stand alone
P: dict[str, Any] = {"name": "p", "methods": ["regular", "adversarial"], "radii": [0.05],
                     "trials": 2, "training": {"epochs": 1}, "cluster": {"gpus_per_task": 0}}
BASE = study_text("/tmp/drosweep-property-root", **P, evaluation={"test_subset": 50})
SOURCE = Path("p.toml")


def _toml(value: Any) -> str:
    """A TOML literal for a value drawn below (floats in full precision; nan and inf too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"


def _accepted(table: str | None, key: str, value: Any, base: str = BASE) -> bool:
    try:
        parse_study(_with(base, table, key, _toml(value)), SOURCE)
    except StudyError as exc:
        assert "\n" not in str(exc).strip(), str(exc)
        return False
    return True


SCALARS = st.one_of(st.integers(), st.floats(), st.booleans(),
                    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
                            max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True),
                                                 inner, max_size=2)), max_leaves=6)


@SETTINGS
@given(key=st.sampled_from(_keys()), value=VALUES)
def test_any_value_of_any_key_is_accepted_or_one_line(key: tuple[str | None, str],
                                                      value: Any) -> None:
    _accepted(*key, value)  # any exception but StudyError escapes and fails


@SETTINGS
@given(st.one_of(st.integers(min_value=-5, max_value=3 * MAX_CPUS_PER_TASK),
                 st.integers(min_value=-(2 ** 70), max_value=2 ** 70)))
def test_cpus_per_task_within_bounds(n: int) -> None:
    """The reader keeps to its constant; the constant's value is pinned in test_study_bounds."""
    assert _accepted("cluster", "cpus_per_task", n) == (1 <= n <= MAX_CPUS_PER_TASK)


@SETTINGS
@given(st.one_of(st.integers(min_value=-10, max_value=2 * MAX_TRIALS),
                 st.integers(min_value=-(2 ** 70), max_value=2 ** 70)))
def test_trials_within_bounds(n: int) -> None:
    # two methods, one radius, regular once: 2 n trials in all
    assert _accepted(None, "trials", n) == (1 <= n <= MAX_TRIALS and 2 * n <= MAX_GRID_TRIALS)


@SETTINGS
@given(st.integers(min_value=-5, max_value=4 * MAX_HIDDEN))
def test_hidden_within_bounds(n: int) -> None:
    assert _accepted("training", "hidden", n) == (1 <= n <= MAX_HIDDEN)


@SETTINGS
@given(st.lists(st.one_of(st.floats(), st.integers(min_value=-5, max_value=2000)),
                min_size=0, max_size=6))
def test_radii_within_bounds(radii: list[float]) -> None:
    tags = [radius_tag(float(r)) for r in radii if math.isfinite(r) and 0 < r <= MAX_RADIUS]
    ok = (0 < len(radii) <= MAX_RADII and len(tags) == len(radii)
          and len(set(tags)) == len(tags))
    # no [evaluation]: its N(eps) would bound the radii too
    no_evaluation = study_text("/tmp/drosweep-property-root", **P)
    assert _accepted(None, "radii", radii, no_evaluation) == ok


# settings with no bound but > 0 and finite (the cluster's numbers have maximums too)
POSITIVE_NUMBERS = [("training", "lr"), ("training", "pgd_step_factor"),
                    ("training", "langevin_step_factor"), ("training", "checkpoint_every_s"),
                    ("evaluation", "pgd_step")]


@SETTINGS
@given(key=st.sampled_from(POSITIVE_NUMBERS),
       value=st.one_of(st.floats(), st.floats(min_value=-1e3, max_value=1e3)))
def test_positive_numbers_within_bounds(key: tuple[str, str], value: float) -> None:
    assert _accepted(*key, value) == (math.isfinite(value) and value > 0)


@SETTINGS
@given(methods=st.lists(st.sampled_from(["regular", "robust", "adversarial", "langevin"]),
                        min_size=1, max_size=4, unique=True),
       n_radii=st.integers(min_value=1, max_value=4), trials=st.integers(min_value=1, max_value=5),
       per_radius=st.booleans())
def test_grid_size_counts_what_expand_lists(methods: list[str], n_radii: int, trials: int,
                                            per_radius: bool) -> None:
    """The limits are checked on `grid_size`, computed without listing the grid: it must be
    the number of trials `expand` lists, or a bound checks another grid than the one run."""
    radii = [0.01 * (i + 1) for i in range(n_radii)]
    text = (_with(_with(_with(_with(BASE, None, "methods", _toml(methods)), None, "radii",
                              _toml(radii)), None, "trials", str(trials)),
                  None, "regular_per_radius", _toml(per_radius)))
    study = parse_study(text, SOURCE)
    n_regular = methods.count("regular")
    assert len(expand(study)) == grid_size(n_regular, len(methods) - n_regular, n_radii, trials,
                                           per_radius)
