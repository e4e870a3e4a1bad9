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
from dataclasses import dataclass
from typing import Any

from common.settings import Wording, check_fields, read, setting
from jobs.errors import StudyError
from trainers.spec import MAX_BALL_SAMPLES, n_ball_samples


def _too_many_samples(value: int) -> str:
    return f"must be at most {MAX_BALL_SAMPLES:,}, got {value!r}"


WORDING = Wording(  # how `[evaluation]` refusals read
    error=StudyError, key=lambda name: f"evaluation setting '{name}'",
    unknown=lambda unknown, allowed: f"unknown key(s) {unknown}; allowed: {allowed}")


@dataclass(frozen=True)
class EvalSettings:
    """Every constant of the evaluation; bounds and one-line docs declared on the fields
    (common.settings), as `TrainSettings`' are."""

    # worst-case accuracy: N(eps) = int(n_base * n_growth ** (eps / n_eps_scale)) uniform points in
    # the L-inf ball of each test point (the training formula); `ball_samples` fixes N instead
    n_base: int = setting(616, "worst case: N(eps) = int(n_base * n_growth ** (eps / "
                          "n_eps_scale)) ball samples per test point", minimum=1)
    n_growth: float = setting(100.0, "worst case: growth of N(eps) over n_eps_scale of radius",
                              minimum=0, above=True)
    n_eps_scale: float = setting(0.24, "worst case: the radius over which N(eps) grows "
                                 "n_growth-fold", minimum=0, above=True)
    ball_samples: int | None = setting(None, "worst case: this many ball samples per test point "
                                       "at every radius (unset: N(eps))", minimum=1,
                                       maximum=MAX_BALL_SAMPLES, over=_too_many_samples)
    # mean accuracy: fraction correct over the first `mean_samples` draws of each point's stream
    # (the same draws the worst case starts with); None: all N(eps) draws (no early stop)
    mean_samples: int | None = setting(1000, "mean accuracy over the first this many draws of "
                                       "each point (unset: all N(eps))", minimum=1)
    # PGD accuracy: L-inf, sign steps of absolute size pgd_step, start uniform in the ball
    pgd_steps: int = setting(30, "PGD accuracy: L-inf sign steps per test point", minimum=1)
    pgd_step: float = setting(0.02, "PGD accuracy: absolute size of each step", minimum=0,
                              above=True)
    pgd_random_start: bool = setting(True, "PGD accuracy: start uniform in the ball (false: "
                                     "at the point)")
    # Lipschitz search over ReLU activation patterns: a genetic algorithm, then an ascent polish
    ga_population: int = setting(100, "Lipschitz search: patterns per generation of the genetic "
                                 "algorithm", minimum=1)
    ga_generations: int = setting(3200, "Lipschitz search: generations", minimum=1)
    ga_elite: int = setting(4, "Lipschitz search: best patterns kept as they are each "
                            "generation", minimum=0, bounds="[0, ga_population)")
    ga_tournament: int = setting(3, "Lipschitz search: patterns per selection tournament",
                                 minimum=1)
    ga_mutation: float | None = setting(None, "Lipschitz search: bit-flip probability (unset: "
                                        "1 / hidden units)", minimum=0, above=True, maximum=1,
                                        below=True)
    ga_polish: bool = setting(True, "Lipschitz search: polish the best pattern by ascent")
    # false: no Lipschitz estimates at all (for a study whose claims do not concern them: the
    # search is the costliest metric of a small model)
    lipschitz: bool = setting(True, "estimate Lipschitz constants (false: skip the costliest "
                              "metric)")
    test_subset: int | None = setting(None, "evaluate on the first this many test points after a "
                                      "seeded shuffle (unset: all)", minimum=1)
    chunk_size: int = setting(131072, "ball points per forward pass (bounds memory)", minimum=1)
    batch_size: int = setting(1024, "test points per PGD / Jacobian block (bounds memory)",
                              minimum=1)
    seed: int = setting(0, "seed of the evaluation's draws", minimum=0)
    allow_tf32_override: bool = setting(False, "evaluate even when "
                                        "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE is set (TF32 matmuls)")

    def validate(self) -> None:
        """StudyError naming the first setting its declaration refuses; `ga_elite` must also
        stay below `ga_population`."""
        check_fields(self, WORDING)
        if self.ga_elite >= self.ga_population:
            raise StudyError(f"evaluation setting 'ga_elite' must be in [0, ga_population), "
                             f"got {self.ga_elite!r}")

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
        try:
            settings: EvalSettings = read(cls, data, WORDING)
        except StudyError as exc:
            raise StudyError(f"{source}: {exc}") from None
        return settings
