"""Evaluation settings: every constant of the paper's evaluation, with the paper's value as default.

A study's `[evaluation]` table is read into `EvalSettings` when the study loads (jobs/study.py),
so a bad value fails before anything is trained; `reduce/` evaluates with them. The settings are
part of each result row (as a hash and as JSON), so a change of any value makes the affected
models be evaluated again, and results computed under different settings never mix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from jobs.errors import StudyError
from trainers.spec import MAX_BALL_SAMPLES, n_ball_samples


@dataclass(frozen=True)
class EvalSettings:
    # worst-case accuracy: N(eps) = int(n_base * n_growth ** (eps / n_eps_scale)) uniform points in
    # the L-inf ball of each test point (the training formula); `ball_samples` fixes N instead
    n_base: int = 616
    n_growth: float = 100.0
    n_eps_scale: float = 0.24
    ball_samples: int | None = None
    # mean accuracy: fraction correct over the first `mean_samples` draws of each point's stream
    # (the same draws the worst case starts with); None: all N(eps) draws (no early stop)
    mean_samples: int | None = 1000
    # PGD accuracy: L-inf, sign steps of absolute size pgd_step, start uniform in the ball
    pgd_steps: int = 30
    pgd_step: float = 0.02
    pgd_random_start: bool = True
    # Lipschitz search over ReLU activation patterns: a genetic algorithm, then an ascent polish
    ga_population: int = 100
    ga_generations: int = 3200
    ga_elite: int = 4
    ga_tournament: int = 3
    ga_mutation: float | None = None  # bit-flip probability; None: 1 / number of hidden units
    ga_polish: bool = True
    # false: no Lipschitz estimates at all (for a study whose claims do not concern them: the
    # search is the costliest metric of a small model)
    lipschitz: bool = True
    # evaluate on the first `test_subset` test points after a seeded shuffle (None: all)
    test_subset: int | None = None
    # memory bounds: ball points per forward pass; test points per PGD / Jacobian block
    chunk_size: int = 131072
    batch_size: int = 1024
    seed: int = 0
    # evaluate even when TORCH_ALLOW_TF32_CUBLAS_OVERRIDE is set (TF32 matmuls; off: refuse)
    allow_tf32_override: bool = False

    def validate(self) -> None:
        positive_int = ["n_base", "pgd_steps", "ga_population", "ga_generations",
                        "ga_tournament", "chunk_size", "batch_size"]
        for name in positive_int:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise StudyError(f"evaluation setting '{name}' must be a positive integer, "
                                  f"got {value!r}")
        for name in ("n_growth", "n_eps_scale", "pgd_step"):
            value = getattr(self, name)
            if (not isinstance(value, int | float) or isinstance(value, bool)
                    or not math.isfinite(value) or value <= 0):
                raise StudyError(f"evaluation setting '{name}' must be a positive number, "
                                  f"got {value!r}")
        for name in ("ball_samples", "mean_samples", "test_subset"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise StudyError(f"evaluation setting '{name}' must be a positive integer "
                                  f"or unset, got {value!r}")
        if self.ball_samples is not None and self.ball_samples > MAX_BALL_SAMPLES:
            raise StudyError(f"evaluation setting 'ball_samples' must be at most "
                              f"{MAX_BALL_SAMPLES:,}, got {self.ball_samples!r}")
        if not isinstance(self.ga_elite, int) or isinstance(self.ga_elite, bool) \
                or not 0 <= self.ga_elite < self.ga_population:
            raise StudyError(f"evaluation setting 'ga_elite' must be in [0, ga_population), "
                              f"got {self.ga_elite!r}")
        if self.ga_mutation is not None and (not isinstance(self.ga_mutation, float)
                                             or not 0 < self.ga_mutation < 1):
            raise StudyError(f"evaluation setting 'ga_mutation' must be in (0, 1) or unset, "
                              f"got {self.ga_mutation!r}")
        if not isinstance(self.allow_tf32_override, bool):
            raise StudyError(f"evaluation setting 'allow_tf32_override' must be true or false, "
                              f"got {self.allow_tf32_override!r}")
        for name in ("pgd_random_start", "ga_polish", "lipschitz"):
            if not isinstance(getattr(self, name), bool):
                raise StudyError(f"evaluation setting '{name}' must be true or false, "
                                  f"got {getattr(self, name)!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise StudyError(f"evaluation setting 'seed' must be an integer >= 0, "
                              f"got {self.seed!r}")

    def n_worst(self, radius: float) -> int:
        """Ball samples per test point for the worst-case accuracy at `radius`."""
        if self.ball_samples is not None:
            return self.ball_samples
        return max(1, n_ball_samples(radius, self))

    def n_mean(self, radius: float) -> int:
        return self.n_worst(radius) if self.mean_samples is None else self.mean_samples

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.lipschitz:  # the default: absent, so results evaluated before it keep their hash
            del out["lipschitz"]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """Short, stable hash of every value and of the sampling scheme: the incremental table's
        notion of 'same settings'. Not of the device: CPU and CUDA draw the same samples
        (trainers.rng), so their rows differ only by float rounding and may mix."""
        from trainers.rng import SCHEME as SAMPLING_SCHEME  # torch only when reducing

        return hashlib.sha256((self.to_json() + SAMPLING_SCHEME).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "evaluation settings") -> EvalSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise StudyError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(names)}")
        values = dict(data)
        for name in ("n_growth", "n_eps_scale", "pgd_step", "ga_mutation"):
            value = values.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                values[name] = float(value)
        settings = cls(**values)
        try:
            settings.validate()
        except StudyError as exc:
            raise StudyError(f"{source}: {exc}") from None
        return settings
