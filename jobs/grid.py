"""The grid: method × radius × swept settings × trial → frozen `TrialSpec`s with stable keys
and seeds.

Key format: `<method>/eps_<radius>/trial_<i>`, the radius written by `radius_tag`
(jobs/radius.py). A study with a `[sweep]` (training settings as more axes, jobs/study.py) names
each swept value between the radius and the trial, in the study file's order:
`robust/eps_0.1/lr_0.1/trial_0`; without one, keys (and so seeds and folders) are as they were.
`regular` ignores the radius, so by default it is trained once per trial under radius 0
(`regular/eps_0/trial_3`) and evaluated at every radius of the study; with
`regular_per_radius = true` it gets one trial per radius like the other methods.

The seed of a trial is derived from (base seed, key) alone: adding methods, radii or trials to a
study never changes the seed of an existing trial.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Any

from jobs.axes import AXIS_RE, canonical_number, value_tag
from jobs.errors import StudyError
from jobs.radius import radius_tag
from jobs.study import Study
from trainers.spec import Method, TrainSettings, TrainSpec

KEY_RE = re.compile(rf"^({'|'.join(re.escape(m.value) for m in Method)})"
                    r"/eps_([0-9][0-9.e+-]*)/((?:[a-z][a-z0-9_]*_[A-Za-z0-9][A-Za-z0-9.+-]*/)*)"
                    r"trial_(0|[1-9][0-9]*)$")
Axes = tuple[tuple[str, Any], ...]   # (training setting, value) of each swept axis, in order


def trial_key(method: Method, radius: float, trial: int, axes: Axes = ()) -> str:
    swept = "".join(f"{name}_{value_tag(value)}/" for name, value in axes)
    return f"{method.value}/eps_{radius_tag(radius)}/{swept}trial_{trial}"


def group_label(method: Method, radius: float) -> str:
    """A (method, radius) group as plans and messages name it."""
    return f"{method.value} eps={radius_tag(radius)}"


def derive_trial_seed(base_seed: int, key: str) -> int:
    digest = hashlib.sha256(f"{base_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class TrialSpec:
    """One trial of a study: its key (names its folder) and what to train."""

    key: str
    trial: int
    train_spec: TrainSpec
    axes: Axes = ()      # the swept settings' values of this trial (empty: no sweep)

    @property
    def method(self) -> Method:
        return self.train_spec.method

    @property
    def radius(self) -> float:
        """The training radius (0 for `regular` trained once per trial)."""
        return self.train_spec.radius

    @property
    def group(self) -> tuple[Method, float]:
        return (self.method, self.radius)


def parse_key(key: str) -> tuple[Method, float, int]:
    """The inverse of `trial_key`; rejects anything that could name a path outside a trial, and
    numbers not in their one written form."""
    match = KEY_RE.match(key) if isinstance(key, str) else None
    if match is None:
        raise StudyError(f"invalid trial key {key!r}: expected <method>/eps_<radius>/trial_<i> "
                         f"(or <method>/eps_<radius>/<setting>_<value>/.../trial_<i>)")
    key_axes(key)
    try:
        radius = float(match.group(2))
    except ValueError:
        raise StudyError(f"invalid trial key {key!r}: bad radius {match.group(2)!r}") from None
    if radius_tag(radius) != match.group(2):
        raise StudyError(f"invalid trial key {key!r}: radius not in canonical form "
                         f"(expected eps_{radius_tag(radius)})")
    return Method(match.group(1)), radius, int(match.group(4))


def key_axes(key: str) -> tuple[tuple[str, str], ...]:
    """The (setting, value text) of each swept axis a key names; a number must be written as
    `value_tag` writes it (`lr_0.10` is not `lr_0.1`'s folder)."""
    out: list[tuple[str, str]] = []
    for segment in key.split("/")[2:-1]:
        match = AXIS_RE.match(segment)
        if match is None or match.group(1) == "trial":  # a trial's folder, never a value's
            raise StudyError(f"invalid trial key {key!r}: bad axis {segment!r}")
        name, text = match.groups()
        canonical = canonical_number(text)
        if canonical is not None and canonical != text:
            raise StudyError(f"invalid trial key {key!r}: {name} not in canonical form "
                             f"(expected {name}_{canonical})")
        out.append((name, text))
    return tuple(out)


def sweep_combinations(study: Study) -> list[Axes]:
    """Every combination of the swept values, in the study file's order (one empty one without
    a sweep)."""
    names = [name for name, _ in study.sweep]
    return [tuple(zip(names, values, strict=True))
            for values in itertools.product(*(v for _, v in study.sweep))]


def settings_for(study: Study, axes: Axes) -> TrainSettings:
    """The study's training settings with the swept values of one combination."""
    return dataclasses.replace(study.settings, **dict(axes)) if axes else study.settings


def expand(study: Study) -> list[TrialSpec]:
    """All trials of the study, in a stable order: method, radius, swept values (in the study
    file's order), trial."""
    combos = sweep_combinations(study)
    specs: list[TrialSpec] = []
    for method in study.methods:
        radii = (0.0,) if method is Method.REGULAR and not study.regular_per_radius \
            else study.radii
        for radius in radii:
            for axes in combos:
                settings = settings_for(study, axes)
                for trial in range(study.trials):
                    key = trial_key(method, radius, trial, axes)
                    spec = TrainSpec(method=method, radius=radius,
                                     seed=derive_trial_seed(study.base_seed, key),
                                     settings=settings, dataset=study.dataset,
                                     data_options=study.data_options)
                    specs.append(TrialSpec(key=key, trial=trial, train_spec=spec, axes=axes))
    return specs


def evaluation_radii(study: Study, spec: TrialSpec) -> tuple[float, ...]:
    """Radii at which a trained model is evaluated: all of them for `regular` trained once."""
    if spec.method is Method.REGULAR and not study.regular_per_radius:
        return study.radii
    return (spec.radius,)

