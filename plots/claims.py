"""The paper's claims, checked automatically on the medians of the results table.

Each check is one PASS / FAIL line per radius it applies to; SKIP when the table lacks what the
claim needs (a method or the radii). Only non-failed trainings count (as in the figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pandas as pd


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class ClaimSettings:
    min_radius: float = 0.1          # the claims concern eps >= this
    clean_margin: float = 0.05       # robust's clean accuracy may trail regular's by this much
    baseline: str = "regular"
    method: str = "robust"


@dataclass(frozen=True)
class Claim:
    verdict: Verdict
    text: str

    def line(self) -> str:
        return f"{self.verdict.value}: {self.text}"


def _compare(med: pd.DataFrame, metric: str, s: ClaimSettings, describe: str,
             holds: str) -> list[Claim]:
    def median(method: str, radius: float) -> float | None:
        rows = med[(med["method"] == method) & (med["radius"] == radius)]
        if rows.empty or metric not in rows or pd.isna(rows[metric].iloc[0]):
            return None
        return float(rows[metric].iloc[0])

    radii = sorted(r for r in med["radius"].unique() if r >= s.min_radius - 1e-12)
    if not radii:
        return [Claim(Verdict.SKIP, f"{describe}: no radius >= {s.min_radius:g} in the table")]
    claims = []
    for radius in radii:
        ours, base = median(s.method, radius), median(s.baseline, radius)
        if ours is None or base is None:
            claims.append(Claim(Verdict.SKIP, f"{describe} at ε={radius:g}: no "
                                f"{s.method if ours is None else s.baseline} results"))
            continue
        if holds == "ge":
            ok = ours >= base
        elif holds == "le":
            ok = ours <= base
        else:
            ok = ours >= base - s.clean_margin
        claims.append(Claim(Verdict.PASS if ok else Verdict.FAIL,
                            f"{describe} at ε={radius:g}: {s.method} {ours:.4g} vs "
                            f"{s.baseline} {base:.4g}"))
    return claims


def check_claims(med: pd.DataFrame, settings: ClaimSettings | None = None) -> list[Claim]:
    """`med`: medians per (method, radius) as returned by `plots.results.medians`."""
    s = settings or ClaimSettings()
    return [
        *_compare(med, "worst_case_accuracy", s,
                  f"median worst-case accuracy of {s.method} >= {s.baseline}", "ge"),
        *_compare(med, "pgd_accuracy", s,
                  f"median PGD accuracy of {s.method} >= {s.baseline}", "ge"),
        *_compare(med, "clean_accuracy", s,
                  f"median clean accuracy of {s.method} within {s.clean_margin:g} of "
                  f"{s.baseline}", "margin"),
        *_compare(med, "lipschitz_search", s,
                  f"median Lipschitz estimate (pattern search) of {s.method} <= {s.baseline}",
                  "le"),
    ]
