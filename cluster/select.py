"""A subset of a study's trials named on the command line (--method, --radius, --trials, keys).

Every name is checked against the study, so a typo is one clear error, never an empty selection
that silently does nothing: a radius not in the study, a trial index past its count, a key that
does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cluster.errors import ClusterError
from jobs.grid import TrialSpec, expand, parse_key
from jobs.radius import radius_tag
from jobs.study import Study
from trainers.spec import Method


@dataclass(frozen=True)
class Selection:
    """None in a field: no filter on it. A trial is selected when it passes every filter."""

    methods: frozenset[Method] | None = None
    radii: frozenset[str] | None = None      # radius tags (`0.1`, `0` for regular trained once)
    trials: frozenset[int] | None = None
    keys: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.methods is None and self.radii is None and self.trials is None \
            and self.keys is None

    def matches(self, spec: TrialSpec) -> bool:
        return ((self.methods is None or spec.method in self.methods)
                and (self.radii is None or radius_tag(spec.radius) in self.radii)
                and (self.trials is None or spec.trial in self.trials)
                and (self.keys is None or spec.key in self.keys))

    def pick(self, specs: Iterable[TrialSpec]) -> list[TrialSpec]:
        return [s for s in specs if self.matches(s)]


ALL = Selection()


def parse_trials(text: str, count: int) -> frozenset[int]:
    """`0-4,7` → {0, 1, 2, 3, 4, 7}; every index must be < count."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            lo_text, _, hi_text = part.partition("-")
            lo, hi = int(lo_text), int(hi_text or lo_text)
        except ValueError:
            raise ClusterError(f"--trials {text!r}: expected indices and ranges such as "
                               f"0-4,7") from None
        if lo < 0 or hi < lo or hi >= count:
            raise ClusterError(f"--trials {text!r}: {part!r} is not within the study's trials "
                               f"0-{count - 1}")
        out.update(range(lo, hi + 1))
    return frozenset(out)


def make_selection(study: Study, *, methods: Sequence[str] = (),
                   radii: Sequence[float] = (), trials: str | None = None,
                   keys: Sequence[str] = (), specs: Sequence[TrialSpec] | None = None
                   ) -> Selection:
    """`specs`: `expand(study)` when the caller has it already; expanded here only when a radius
    or a key is to be checked against the study."""
    if specs is None:
        specs = expand(study) if radii or keys else ()
    method_set: frozenset[Method] | None = None
    if methods:
        names = {m.value for m in study.methods}
        for name in methods:
            if name not in names:
                raise ClusterError(f"method {name!r} is not in study {study.name} (its methods: "
                                   f"{', '.join(sorted(names))})")
        method_set = frozenset(Method(m) for m in methods)
    radius_set: frozenset[str] | None = None
    if radii:
        present = {radius_tag(s.radius) for s in specs
                   if method_set is None or s.method in method_set}
        for r in radii:
            if radius_tag(r) not in present:
                raise ClusterError(f"radius {r:g} is not in study {study.name} (its radii: "
                                   f"{', '.join(sorted(present, key=float))})")
        radius_set = frozenset(radius_tag(r) for r in radii)
    key_set: frozenset[str] | None = None
    if keys:
        known = {s.key for s in specs}
        for key in keys:
            parse_key(key)  # a malformed key says what a key looks like
            if key not in known:
                raise ClusterError(f"trial {key!r} is not in study {study.name}")
        key_set = frozenset(keys)
    trial_set = parse_trials(trials, study.trials) if trials is not None else None
    return Selection(method_set, radius_set, trial_set, key_set)
