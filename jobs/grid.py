"""The grid: method × radius × trial → frozen `TrialSpec`s with stable keys and seeds.

Key format: `<method>/eps_<radius>/trial_<i>`, the radius written as the shortest decimal that
reads back to the same float with a trailing `.0` dropped (`0.01`, `0.1`, `1`, `1e-05`).
`regular` ignores the radius, so by default it is trained once per trial under radius 0
(`regular/eps_0/trial_3`) and evaluated at every radius of the study; with
`regular_per_radius = true` it gets one trial per radius like the other methods.

The seed of a trial is derived from (base seed, key) alone: adding methods, radii or trials to a
study never changes the seed of an existing trial.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from jobs.errors import StudyError
from jobs.study import Study
from trainers.spec import Method, TrainSpec

KEY_RE = re.compile(
    r"^(regular|robust|adversarial|langevin)/eps_([0-9][0-9.e+-]*)/trial_(0|[1-9][0-9]*)$")


def radius_tag(radius: float) -> str:
    text = repr(float(radius))
    return text[:-2] if text.endswith(".0") else text


def trial_key(method: Method, radius: float, trial: int) -> str:
    return f"{method.value}/eps_{radius_tag(radius)}/trial_{trial}"


def derive_trial_seed(base_seed: int, key: str) -> int:
    digest = hashlib.sha256(f"{base_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class TrialSpec:
    """One trial of a study: its key (names its folder) and what to train."""

    key: str
    trial: int
    train_spec: TrainSpec

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
    """The inverse of `trial_key`; rejects anything that could name a path outside a trial."""
    match = KEY_RE.match(key) if isinstance(key, str) else None
    if match is None:
        raise StudyError(f"invalid trial key {key!r}: expected <method>/eps_<radius>/trial_<i>")
    try:
        radius = float(match.group(2))
    except ValueError:
        raise StudyError(f"invalid trial key {key!r}: bad radius {match.group(2)!r}") from None
    if radius_tag(radius) != match.group(2):
        raise StudyError(f"invalid trial key {key!r}: radius not in canonical form "
                         f"(expected eps_{radius_tag(radius)})")
    return Method(match.group(1)), radius, int(match.group(3))


def expand(study: Study) -> list[TrialSpec]:
    """All trials of the study, in a stable order: method, radius, trial."""
    specs: list[TrialSpec] = []
    for method in study.methods:
        radii = (0.0,) if method is Method.REGULAR and not study.regular_per_radius \
            else study.radii
        for radius in radii:
            for trial in range(study.trials):
                key = trial_key(method, radius, trial)
                spec = TrainSpec(method=method, radius=radius,
                                 seed=derive_trial_seed(study.base_seed, key),
                                 settings=study.settings, dataset=study.dataset,
                                 data_options=study.data_options)
                specs.append(TrialSpec(key=key, trial=trial, train_spec=spec))
    return specs


def evaluation_radii(study: Study, spec: TrialSpec) -> tuple[float, ...]:
    """Radii at which a trained model is evaluated: all of them for `regular` trained once."""
    if spec.method is Method.REGULAR and not study.regular_per_radius:
        return study.radii
    return (spec.radius,)


def with_train_spec(spec: TrialSpec, train_spec: TrainSpec) -> TrialSpec:
    return replace(spec, train_spec=train_spec)
