"""Where the planner's time estimates come from: the study itself, a calibration, or constants.

Each (method, ε) group is estimated from the first source that knows it:

1. `study`: this study's finished trials (DONE markers) on the same device model: seconds per
   optimizer step = wall time / steps trained by the finishing call, per pack size;
2. `calibration`: a calibration file (`--calibration`, else `cluster.calibration`, else the
   file shipped in `cluster/calibrations/` for the device model);
3. `built-in`: the cost model's constants (`cluster.cost`).

Measured rates are per pack size k. For a k that was measured the mean is used; between two
measured sizes the rate is interpolated linearly; outside them the nearest measurement is scaled
by the cost model's shape (launch-bound passes shared by the pack, FLOPs adding up), so the
built-in model only says how time grows with k, never how long it is.
"""

from __future__ import annotations

import bisect
import enum
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cluster import calibration as cal
from cluster.cost import Cost, estimate, pack_seconds
from jobs.grid import TrialSpec
from jobs.markers import read_done_at
from jobs.paths import Paths
from jobs.radius import radius_tag
from jobs.study import ClusterProfile
from trainers.spec import Method, TrainSpec

CALIBRATIONS = Path(__file__).resolve().parent / "calibrations"


class Source(enum.StrEnum):
    STUDY = "study"
    CALIBRATION = "calibration"
    CALIBRATION_RADII = "calibration, other radii"
    BUILTIN = "built-in"


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]


def same_model(wanted: str, recorded: str) -> bool:
    """Whether a rate recorded on `recorded` holds for `wanted`: equal up to case and
    punctuation, or every word of `wanted` is a word of `recorded` (gres type `h100` or
    `nvidia_h100_80gb_hbm3` against the GPU name `NVIDIA H100 80GB HBM3`)."""
    w, r = _tokens(wanted), _tokens(recorded)
    return bool(w) and (w == r or set(w) <= set(r))


@dataclass(frozen=True)
class Point:
    pack: int
    seconds_per_step: float   # one optimizer step of the whole pack
    samples: int              # trials (study) or measurements (calibration) averaged


@dataclass(frozen=True)
class GroupRate:
    """Wall time of a task of k trials of one group, and what it rests on."""

    cost: Cost                        # the cost model's estimate (steps, shape)
    source: Source = Source.BUILTIN
    points: tuple[Point, ...] = ()    # measured, sorted by pack size

    @property
    def samples(self) -> int:
        """How many finished trials (or calibration measurements) back the estimate."""
        return sum(p.samples for p in self.points)

    @property
    def measured(self) -> bool:
        return bool(self.points)

    def pack_seconds(self, k: int) -> float:
        if not self.points:
            return pack_seconds(self.cost, k)
        packs = [p.pack for p in self.points]
        i = bisect.bisect_left(packs, k)
        if i < len(packs) and packs[i] == k:
            per_step = self.points[i].seconds_per_step
        elif 0 < i < len(packs):
            lo, hi = self.points[i - 1], self.points[i]
            share = (k - lo.pack) / (hi.pack - lo.pack)
            per_step = lo.seconds_per_step + share * (hi.seconds_per_step - lo.seconds_per_step)
        else:
            near = self.points[0] if i == 0 else self.points[-1]
            shape = pack_seconds(self.cost, k) / pack_seconds(self.cost, near.pack)
            per_step = near.seconds_per_step * shape
        return per_step * self.cost.steps


def _points(samples: dict[int, list[float]]) -> tuple[Point, ...]:
    return tuple(Point(k, sum(v) / len(v), len(v)) for k, v in sorted(samples.items()))


@dataclass(frozen=True)
class RateBook:
    """The measured rates a plan may use, per (method, radius tag); see the module docstring."""

    device_model: str | None = None          # what the tasks run on (None: unknown)
    study: dict[tuple[Method, str], tuple[Point, ...]] = field(default_factory=dict)
    calibration: cal.Calibration | None = None
    calibration_path: str | None = None
    notes: tuple[str, ...] = ()               # what was chosen, or why a source was left out

    def rate(self, method: Method, radius: float, cost: Cost) -> GroupRate:
        own = self.study.get((method, radius_tag(radius)))
        if own:
            return GroupRate(cost, Source.STUDY, own)
        if self.calibration is not None:
            found: dict[int, list[float]] = {}
            for r in self.calibration.rates:
                if r.method is method and math.isclose(r.radius, radius):
                    found.setdefault(r.pack, []).append(r.seconds_per_step)
            if found:
                return GroupRate(cost, Source.CALIBRATION, _points(found))
            near = _across_radii(self.calibration, method, radius)
            if near:
                return GroupRate(cost, Source.CALIBRATION_RADII, near)
        return GroupRate(cost)


def _across_radii(calibration: cal.Calibration, method: Method, radius: float
                  ) -> tuple[Point, ...]:
    """A group's rates from the same method's calibration at other radii: between two measured
    radii log-linear in the radius (a robust step's work grows like N(eps), exponential in eps),
    outside them the nearest radius's (PGD and Langevin do the same work at any radius)."""
    by_radius: dict[float, dict[int, list[float]]] = {}
    for r in calibration.rates:
        if r.method is method:
            by_radius.setdefault(r.radius, {}).setdefault(r.pack, []).append(r.seconds_per_step)
    if not by_radius:
        return ()
    radii = sorted(by_radius)
    i = bisect.bisect_left(radii, radius)
    if i == 0 or i == len(radii):
        return _points(by_radius[radii[0 if i == 0 else -1]])
    lo, hi = radii[i - 1], radii[i]
    low, high = _points(by_radius[lo]), {p.pack: p for p in _points(by_radius[hi])}
    share = (radius - lo) / (hi - lo)
    both = [(p, high[p.pack]) for p in low if p.pack in high]
    if not both:  # no pack size measured at both: the nearer radius
        return low if share <= 0.5 else tuple(high.values())
    return tuple(Point(a.pack, math.exp((1 - share) * math.log(a.seconds_per_step)
                                        + share * math.log(b.seconds_per_step)),
                       a.samples + b.samples) for a, b in both)


BUILTIN = RateBook()


def trial_rate(spec: TrainSpec, profile: ClusterProfile, book: RateBook) -> GroupRate:
    """The rate of `spec`'s group as the planner takes it; `.pack_seconds(1)` is one trial
    trained alone (what `plan` shows per trial and `drosweep train` prints before it starts)."""
    return book.rate(spec.method, spec.radius, estimate(spec, profile))


@dataclass(frozen=True)
class TrialEstimate:
    """One trial trained alone on the book's device model, and what the estimate rests on."""

    seconds: float
    steps: int
    device_model: str | None
    source: Source
    samples: int              # finished trials or calibration measurements behind it
    device_tflops: float      # what the built-in model assumes of the device


def trial_estimate(spec: TrainSpec, profile: ClusterProfile, book: RateBook) -> TrialEstimate:
    rate = trial_rate(spec, profile, book)
    return TrialEstimate(rate.pack_seconds(1), rate.cost.steps, book.device_model, rate.source,
                         rate.samples, profile.device_tflops)


def study_points(paths: Paths, trials: Iterable[TrialSpec], device_model: str
                 ) -> dict[tuple[Method, str], tuple[Point, ...]]:
    """Seconds per step of the study's finished trials on `device_model`, per group and pack.

    Markers are read without the shared-filesystem retry (a marker being written now counts
    next time); markers from before device models were recorded are left out."""
    samples: dict[tuple[Method, str], dict[int, list[float]]] = {}
    files = paths.done_files()
    for trial in trials:
        path = files.get(trial.key)
        marker = read_done_at(path) if path is not None else None
        if marker is None or marker.device_model is None or marker.pack is None or marker.wall_s <= 0:
            continue
        stepped = marker.steps - marker.resumed_from
        if stepped <= 0 or not same_model(device_model, marker.device_model):
            continue
        group = samples.setdefault((trial.method, radius_tag(trial.radius)), {})
        group.setdefault(marker.pack, []).append(marker.wall_s / stepped)
    return {g: _points(v) for g, v in samples.items()}


def shipped_calibration(device_model: str) -> Path | None:
    """The calibration file shipped for `device_model`, if there is one."""
    if not CALIBRATIONS.is_dir():
        return None
    for path in sorted(CALIBRATIONS.glob("*.json")):
        try:
            model = json.loads(path.read_text(encoding="utf-8")).get("device_model", "")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(model, str) and model and same_model(device_model, model):
            return path
    return None


def rate_book(paths: Paths | None, trials: Iterable[TrialSpec], device_model: str | None,
              calibration: str | None = None) -> RateBook:
    """Gather the rates for a plan: the study's own (when its device model is known), then a
    calibration file (given, or shipped for the device model). A bad calibration file is a
    ClusterError (one line)."""
    notes: list[str] = []
    own: dict[tuple[Method, str], tuple[Point, ...]] = {}
    if device_model is None:
        notes.append("device model unknown (set cluster.device_model or cluster.gpu_type): "
                     "finished trials are not used for estimates")
    elif paths is not None and paths.runs.is_dir():
        own = study_points(paths, trials, device_model)
    path = calibration
    if path is None and device_model is not None:
        shipped = shipped_calibration(device_model)
        path = str(shipped) if shipped is not None else None
    loaded = cal.load(path) if path is not None else None
    if loaded is not None and device_model is not None \
            and not same_model(device_model, loaded.device_model):
        notes.append(f"calibration {path} was measured on {loaded.device_model!r}, the tasks "
                     f"run on {device_model!r}")
    return RateBook(device_model, own, loaded, path, tuple(notes))
