"""Evaluation settings: validation, the paper's N(eps), and reproducible evaluations."""

from __future__ import annotations

import pytest
import torch

from jobs.errors import StudyError
from reduce import EvalSettings, evaluate_model
from reduce.evaluate import metrics_of
from trainers.data import make_synthetic
from trainers.model import build_model


def test_paper_defaults_and_sample_counts() -> None:
    s = EvalSettings()
    assert (s.pgd_steps, s.pgd_step, s.ga_population, s.ga_generations) == (30, 0.02, 100, 3200)
    assert s.n_worst(0.1) == 4196 and s.n_worst(0.2) == 28592
    assert s.n_mean(0.3) == 1000
    assert EvalSettings(mean_samples=None).n_mean(0.1) == 4196
    assert EvalSettings(ball_samples=50).n_worst(0.3) == 50


@pytest.mark.parametrize("data, message", [
    ({"pgd_stepz": 1}, "unknown key"),
    ({"pgd_steps": 0}, "'pgd_steps' must be a positive integer"),
    ({"pgd_step": -0.1}, "'pgd_step' must be a positive number"),
    ({"mean_samples": 0}, "'mean_samples' must be a positive integer or unset"),
    ({"ga_elite": 100}, "'ga_elite' must be in [0, ga_population)"),
    ({"ga_mutation": 1.5}, "'ga_mutation'"),
])
def test_bad_settings_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(StudyError, match=r"study\.toml: table 'evaluation'") as info:
        EvalSettings.from_dict(data, source="study.toml: table 'evaluation'")
    assert message in str(info.value)


def test_digest_changes_with_any_value() -> None:
    assert EvalSettings().digest == EvalSettings.from_dict({"pgd_step": 0.02}).digest
    assert EvalSettings().digest != EvalSettings(seed=1).digest


def test_evaluation_is_reproducible_and_covers_every_metric() -> None:
    data = make_synthetic()
    model = build_model(hidden=16, seed=0)
    s = EvalSettings(ball_samples=30, mean_samples=10, pgd_steps=2, ga_population=5,
                     ga_generations=2, ga_elite=1)
    a = evaluate_model(model, data.x_test, data.y_test, [0.05, 0.1], s, "robust/eps_0.1/trial_0")
    b = evaluate_model(model, data.x_test, data.y_test, [0.05, 0.1], s, "robust/eps_0.1/trial_0")
    assert a == b
    assert set(a.metrics) == {0.05, 0.1}
    for values in a.metrics.values():
        # n_mean <= n_worst: a point counted by the worst case has its first n_mean draws right
        assert values["worst_case_accuracy"] <= values["mean_accuracy"]
        assert values["lipschitz_lower"] <= values["lipschitz_search"] <= values["lipschitz_upper"]
    assert torch.is_grad_enabled()


def test_lipschitz_can_be_left_out_and_its_default_keeps_the_digest() -> None:
    assert "lipschitz" not in EvalSettings().to_dict()  # results evaluated before it still match
    off = EvalSettings.from_dict({"lipschitz": False, "ball_samples": 30, "mean_samples": 10,
                                  "pgd_steps": 2})
    assert off.digest != EvalSettings(ball_samples=30, mean_samples=10, pgd_steps=2).digest
    data = make_synthetic()
    out = evaluate_model(build_model(hidden=16, seed=0), data.x_test, data.y_test, [0.1], off,
                         "regular/eps_0/trial_0")
    assert set(out.metrics[0.1]) == set(metrics_of(off)) == {
        "clean_accuracy", "worst_case_accuracy", "mean_accuracy", "pgd_accuracy"}
    with pytest.raises(StudyError, match="'lipschitz' must be true or false"):
        EvalSettings.from_dict({"lipschitz": "no"})
