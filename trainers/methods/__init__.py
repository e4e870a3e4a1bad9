"""The four training methods behind one interface (see base.py)."""

from __future__ import annotations

from trainers.methods.adversarial import adversarial_step
from trainers.methods.base import MethodStep, StepContext, temperature
from trainers.methods.langevin import langevin_step
from trainers.methods.regular import regular_step
from trainers.methods.robust import robust_step
from trainers.spec import Method

STEPS: dict[Method, MethodStep] = {
    Method.REGULAR: regular_step,
    Method.ROBUST: robust_step,
    Method.ADVERSARIAL: adversarial_step,
    Method.LANGEVIN: langevin_step,
}


def method_step(method: Method) -> MethodStep:
    return STEPS[method]


__all__ = ["STEPS", "MethodStep", "StepContext", "method_step", "temperature"]
