"""Helpers of the reduction tests: a tiny study with hand-made models and DONE markers."""

from __future__ import annotations

from reduce_support import trained_state

from trainers.data import make_synthetic


def test_helper_models_fit_the_synthetic_data() -> None:
    from trainers.model import MLP

    model = MLP(8, 16, 12)
    model.load_state_dict(trained_state(0))
    data = make_synthetic()
    assert float((model(data.x_test).argmax(1) == data.y_test).float().mean()) > 0.5
