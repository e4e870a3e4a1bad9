"""The four training methods behind one interface (see base.py)."""

from __future__ import annotations

from trainers.methods.adversarial import ADVERSARIAL, adversarial_step
from trainers.methods.base import (
    MethodParts,
    MethodStep,
    Stage,
    StaticContext,
    StepContext,
    StepStreams,
    step_keys,
    temperature,
)
from trainers.methods.langevin import LANGEVIN, langevin_step
from trainers.methods.regular import REGULAR, regular_step
from trainers.methods.robust import ROBUST, robust_step
from trainers.spec import Method

STEPS: dict[Method, MethodStep] = {
    Method.REGULAR: regular_step,
    Method.ROBUST: robust_step,
    Method.ADVERSARIAL: adversarial_step,
    Method.LANGEVIN: langevin_step,
}
PARTS: dict[Method, MethodParts] = {
    Method.REGULAR: REGULAR,
    Method.ROBUST: ROBUST,
    Method.ADVERSARIAL: ADVERSARIAL,
    Method.LANGEVIN: LANGEVIN,
}


def method_step(method: Method) -> MethodStep:
    """The whole step, eagerly (trainers.graphs runs the static stage as a CUDA graph)."""
    return STEPS[method]


def method_parts(method: Method) -> MethodParts:
    return PARTS[method]


__all__ = ["PARTS", "STEPS", "MethodParts", "MethodStep", "Stage", "StaticContext",
           "StepContext", "StepStreams", "method_parts", "method_step", "step_keys", "temperature"]
