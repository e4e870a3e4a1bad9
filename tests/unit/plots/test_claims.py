"""Claim checks count a difference between medians only when it exceeds the spread across trials."""

from __future__ import annotations

import pandas as pd

from plots import ClaimSettings, Verdict, check_claims


def values(per_method: dict[str, list[float]], metric: str = "pgd_accuracy",
           radius: float = 0.3) -> pd.DataFrame:
    return pd.DataFrame([{"method": method, "radius": radius, "trial": i, "metric": metric,
                          "value": v}
                         for method, vs in per_method.items() for i, v in enumerate(vs)])


def verdict(claims: list, start: str) -> tuple[Verdict, str]:
    found = [c for c in claims if c.text.startswith(start)]
    assert len(found) == 1, [c.line() for c in claims]
    return found[0].verdict, found[0].text


ROBUST_PGD = "median PGD accuracy of robust > regular beyond the spread at ε=0.3"


def test_gap_larger_than_the_spread_passes() -> None:
    claims = check_claims(values({"robust": [0.90, 0.91, 0.92], "regular": [0.85, 0.86, 0.87]}))
    v, text = verdict(claims, ROBUST_PGD)
    assert v is Verdict.PASS
    assert "robust 0.91 vs regular 0.86" in text and "gap 0.05 > spread 0.02" in text


def test_same_median_gap_inside_the_spread_fails() -> None:
    """The medians differ as much as above, but one robust trial is far off: noise, not effect."""
    claims = check_claims(values({"robust": [0.80, 0.91, 0.95], "regular": [0.85, 0.86, 0.87]}))
    v, text = verdict(claims, ROBUST_PGD)
    assert v is Verdict.FAIL and "gap 0.05 <= spread 0.15" in text


def test_spread_is_the_larger_side() -> None:
    claims = check_claims(values({"robust": [0.91, 0.91, 0.91], "regular": [0.80, 0.86, 0.87]}))
    assert verdict(claims, ROBUST_PGD)[0] is Verdict.FAIL  # regular's range 0.07 > gap 0.05


def test_lower_is_better_for_the_lipschitz_claim() -> None:
    start = ("median Lipschitz estimate (pattern search) of robust < regular beyond the spread "
             "at ε=0.3")
    lower = values({"robust": [10.0, 11.0, 12.0], "regular": [20.0, 21.0, 22.0]},
                   "lipschitz_search")
    assert verdict(check_claims(lower), start)[0] is Verdict.PASS
    higher = values({"robust": [20.0, 21.0, 22.0], "regular": [10.0, 11.0, 12.0]},
                    "lipschitz_search")
    assert verdict(check_claims(higher), start)[0] is Verdict.FAIL


def test_clean_accuracy_within_the_margin_counts_the_spread() -> None:
    start = "median clean accuracy of robust within 0.05 of regular at ε=0.3"
    close = values({"robust": [0.98, 0.99, 0.99], "regular": [1.0, 1.0, 1.0]}, "clean_accuracy")
    assert verdict(check_claims(close), start)[0] is Verdict.PASS
    noisy = values({"robust": [0.90, 0.99, 0.99], "regular": [1.0, 1.0, 1.0]}, "clean_accuracy")
    v, text = verdict(check_claims(noisy), start)
    assert v is Verdict.FAIL and "shortfall 0.01 + spread 0.09 > 0.05" in text
    loose = check_claims(noisy, ClaimSettings(clean_margin=0.2))
    assert verdict(loose, start.replace("0.05", "0.2"))[0] is Verdict.PASS


def test_one_trial_or_a_missing_metric_is_skipped() -> None:
    one = check_claims(values({"robust": [0.99], "regular": [0.5, 0.5]}))
    v, text = verdict(one, ROBUST_PGD)
    assert v is Verdict.SKIP and "fewer than 2 robust trials (no spread)" in text
    absent = check_claims(values({"robust": [0.9, 0.9], "regular": [0.5, 0.5]}))
    v, text = verdict(absent, "median Lipschitz estimate")
    assert v is Verdict.SKIP and "lipschitz_search not evaluated" in text


def test_adversarial_is_checked_under_attack_too() -> None:
    claims = check_claims(values({"adversarial": [0.90, 0.91, 0.92],
                                  "regular": [0.85, 0.86, 0.87]}))
    start = "median PGD accuracy of adversarial > regular beyond the spread at ε=0.3"
    assert verdict(claims, start)[0] is Verdict.PASS
    v, text = verdict(claims, ROBUST_PGD)
    assert v is Verdict.SKIP and "no robust results" in text


def _with_clean(pgd: dict[str, list[float]], clean: dict[str, list[float]]) -> pd.DataFrame:
    return pd.concat([values(pgd), values(clean, "clean_accuracy")], ignore_index=True)


def test_models_that_did_not_learn_are_inconclusive() -> None:
    """Avila models at 0.5 clean accuracy (12 classes: floor (1 + 1/12)/2 = 0.54) neither show
    nor refute a claim: INCONCLUSIVE, naming the side and the floor; above it, the claim is
    judged as before (a FAIL stays a FAIL)."""
    pgd = {"robust": [0.30, 0.31, 0.32], "regular": [0.30, 0.31, 0.32]}
    chance = ClaimSettings(chance=1 / 12)
    unlearnt = _with_clean(pgd, {"robust": [0.49, 0.50, 0.51], "regular": [0.50, 0.50, 0.52]})
    v, text = verdict(check_claims(unlearnt, chance), ROBUST_PGD)
    assert v is Verdict.INCONCLUSIVE
    assert "robust's median clean accuracy 0.5 < 0.542 (halfway from chance 0.0833 to 1)" in text
    learnt = _with_clean(pgd, {"robust": [0.80, 0.81, 0.82], "regular": [0.85, 0.86, 0.87]})
    assert verdict(check_claims(learnt, chance), ROBUST_PGD)[0] is Verdict.FAIL
    # no chance level and no floor: judged as before
    assert verdict(check_claims(unlearnt), ROBUST_PGD)[0] is Verdict.FAIL
    # a floor set by hand wins over chance
    low = ClaimSettings(chance=1 / 12, learnt_floor=0.4)
    assert verdict(check_claims(unlearnt, low), ROBUST_PGD)[0] is Verdict.FAIL
    v, text = verdict(check_claims(learnt, ClaimSettings(learnt_floor=0.9)), ROBUST_PGD)
    assert v is Verdict.INCONCLUSIVE and "(the learnt floor)" in text
