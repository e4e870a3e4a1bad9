"""The paper's claims, checked automatically on the trials of the results table.

Each check compares a method with the baseline (regular) on one metric, per radius ε >= the
claims' minimum, and is one PASS / FAIL line; SKIP when the table lacks what it needs (a method, a
metric, fewer than two trials on a side); INCONCLUSIVE when the models did not learn: a side's
median clean accuracy is below the learnt floor (by default halfway from chance to 1), where a
claim can be neither shown nor refuted. Only non-failed trainings count (as in the figures).

A difference between medians counts only when it is larger than the spread across trials: the
larger of the two sides' ranges (max - min over their trials). With a handful of trials the range
is the honest spread; a median gap inside it is noise, and the check fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

SPREAD_NOTE = ("A claim passes only when the gap between the two medians is larger than the "
               "spread across trials: the larger of the two sides' ranges (max − min over their "
               "trials); a gap inside that spread is noise and fails. \"within\" claims pass when "
               "the shortfall plus that spread is at most the margin.")
MIN_TRIALS = 2  # a spread needs at least two trials on each side


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    INCONCLUSIVE = "INCONCLUSIVE"   # checked on models that did not learn


class Relation(StrEnum):
    ABOVE = "above"    # the method's median beats the baseline's by more than the spread
    BELOW = "below"    # ... is lower (Lipschitz estimates) by more than the spread
    WITHIN = "within"  # ... trails by at most the margin, even when off by the spread


@dataclass(frozen=True)
class ClaimSettings:
    min_radius: float = 0.1          # the claims concern eps >= this
    clean_margin: float = 0.05       # robust's clean accuracy may trail regular's by this much
    baseline: str = "regular"
    method: str = "robust"
    attack_method: str = "adversarial"  # also checked against the baseline under PGD
    chance: float | None = None      # 1 / classes of the data set
    learnt_floor: float | None = None  # median clean accuracy a side needs (default: below)

    @property
    def floor(self) -> float | None:
        """The median clean accuracy below which models have not learnt: the set floor, else
        halfway from chance to perfect (0.54 for Avila's 12 classes, 0.75 for 2), else none."""
        if self.learnt_floor is not None:
            return self.learnt_floor
        return None if self.chance is None else (1 + self.chance) / 2


@dataclass(frozen=True)
class Check:
    metric: str
    label: str
    method: str
    baseline: str
    relation: Relation

    def describe(self, margin: float) -> str:
        if self.relation is Relation.WITHIN:
            return (f"median {self.label} of {self.method} within {margin:g} of "
                    f"{self.baseline}")
        word = ">" if self.relation is Relation.ABOVE else "<"
        return f"median {self.label} of {self.method} {word} {self.baseline} beyond the spread"


def paper_checks(s: ClaimSettings) -> tuple[Check, ...]:
    return (
        Check("worst_case_accuracy", "worst-case accuracy", s.method, s.baseline, Relation.ABOVE),
        Check("pgd_accuracy", "PGD accuracy", s.method, s.baseline, Relation.ABOVE),
        Check("pgd_accuracy", "PGD accuracy", s.attack_method, s.baseline, Relation.ABOVE),
        Check("clean_accuracy", "clean accuracy", s.method, s.baseline, Relation.WITHIN),
        Check("lipschitz_search", "Lipschitz estimate (pattern search)", s.method, s.baseline,
              Relation.BELOW),
    )


@dataclass(frozen=True)
class Claim:
    verdict: Verdict
    text: str

    def line(self) -> str:
        return f"{self.verdict.value}: {self.text}"


def judge(check: Check, ours: pd.Series, base: pd.Series, margin: float) -> tuple[bool, str]:
    """Whether `check` holds for the trials `ours` (the method) and `base` (the baseline), and
    the numbers that say why."""
    mine, theirs = float(ours.median()), float(base.median())
    spread = max(float(ours.max() - ours.min()), float(base.max() - base.min()))
    numbers = (f"{check.method} {mine:.4g} vs {check.baseline} {theirs:.4g} (medians of "
               f"{len(ours)} and {len(base)} trials)")
    if check.relation is Relation.WITHIN:
        shortfall = theirs - mine
        ok = shortfall + spread <= margin
        return ok, (f"{numbers}: shortfall {shortfall:.3g} + spread {spread:.3g} "
                    f"{'<=' if ok else '>'} {margin:g}")
    gap = mine - theirs if check.relation is Relation.ABOVE else theirs - mine
    ok = gap > spread
    return ok, f"{numbers}: gap {gap:.3g} {'>' if ok else '<='} spread {spread:.3g}"


def check_claims(values: pd.DataFrame, settings: ClaimSettings | None = None) -> list[Claim]:
    """`values`: one row per (method, radius, trial, metric) with its `value`, as returned by
    `plots.results.trial_values`."""
    s = settings or ClaimSettings()
    claims: list[Claim] = []
    radii = sorted(r for r in values["radius"].unique() if r >= s.min_radius - 1e-12)
    for check in paper_checks(s):
        describe = check.describe(s.clean_margin)
        if not radii:
            claims.append(Claim(Verdict.SKIP, f"{describe}: no radius >= {s.min_radius:g} in "
                                              f"the table"))
            continue
        rows = values[values["metric"] == check.metric].dropna(subset=["value"])
        if rows.empty:
            claims.append(Claim(Verdict.SKIP, f"{describe}: {check.metric} not evaluated"))
            continue
        for radius in radii:
            at = rows[rows["radius"] == radius]
            ours = at[at["method"] == check.method]["value"]
            base = at[at["method"] == check.baseline]["value"]
            short = [(m, len(v)) for m, v in ((check.method, ours), (check.baseline, base))
                     if len(v) < MIN_TRIALS]
            if short:
                method, n = short[0]
                why = f"no {method} results" if n == 0 else \
                    f"fewer than {MIN_TRIALS} {method} trials (no spread)"
                claims.append(Claim(Verdict.SKIP, f"{describe} at ε={radius:g}: {why}"))
                continue
            unlearnt = _unlearnt(values, radius, (check.method, check.baseline), s)
            if unlearnt:
                claims.append(Claim(Verdict.INCONCLUSIVE, f"{describe} at ε={radius:g}: "
                                                          f"{unlearnt}"))
                continue
            ok, why = judge(check, ours, base, s.clean_margin)
            claims.append(Claim(Verdict.PASS if ok else Verdict.FAIL,
                                f"{describe} at ε={radius:g}: {why}"))
    return claims


def _unlearnt(values: pd.DataFrame, radius: float, methods: tuple[str, ...],
              s: ClaimSettings) -> str | None:
    """Why the models of `methods` at `radius` did not learn (a median clean accuracy below the
    floor), or None (they did, or there is no floor or no clean accuracy to tell)."""
    floor = s.floor
    if floor is None:
        return None
    clean = values[(values["metric"] == "clean_accuracy") & (values["radius"] == radius)]
    for method in methods:
        acc = clean[clean["method"] == method]["value"].dropna()
        if len(acc) and float(acc.median()) < floor:
            how = (f"halfway from chance {s.chance:.3g} to 1" if s.learnt_floor is None
                   and s.chance is not None else "the learnt floor")
            return (f"models that did not learn: {method}'s median clean accuracy "
                    f"{float(acc.median()):.3g} < {floor:.3g} ({how})")
    return None
