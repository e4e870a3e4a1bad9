"""The paper's network: MLP 8 -> 200 -> 200 -> 12 with the "generalized ReLU".

The generalized ReLU takes, where its input is exactly 0, a random subgradient in [0, 1) instead of
PyTorch's fixed 0. One uniform draw per call (per layer and backward) from the model's own
generator keeps the global RNG streams untouched and needs no host synchronisation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

N_FEATURES = 8
N_CLASSES = 12


class _GeneralizedReLU(torch.autograd.Function):
    @staticmethod
    def forward(x: Tensor, u: Tensor) -> Tensor:
        return x.clamp_min(0)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        x, u = inputs
        ctx.save_for_backward(x, u)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, u = ctx.saved_tensors
        out = torch.ops.aten.threshold_backward(grad, x, 0)  # grad where x > 0, else 0
        zero = x == 0
        # exact zeros are rare: on the CPU a check is cheap and skips the correction; on CUDA the
        # correction always runs, so that no step waits on the host
        if x.device.type == "cuda" or bool(zero.any()):
            out = out.addcmul_(zero.to(grad.dtype), grad * u.to(grad.dtype))
        return out, None


class GeneralizedReLU(nn.Module):
    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):
            return torch.relu(x)
        u = torch.rand((), generator=self.generator, device=x.device)
        return _GeneralizedReLU.apply(x, u)


class MLP(nn.Module):
    """Parameter names `layer1`, `layer2`, `layer3` are the model-file format: keep them."""

    def __init__(self, n_in: int = N_FEATURES, hidden: int = 200, n_out: int = N_CLASSES,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.layer1 = nn.Linear(n_in, hidden)
        self.layer2 = nn.Linear(hidden, hidden)
        self.layer3 = nn.Linear(hidden, n_out)
        self.act = GeneralizedReLU(generator)

    def set_generator(self, generator: torch.Generator | None) -> None:
        self.act.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        return self.layer3(self.act(self.layer2(self.act(self.layer1(x)))))


def build_model(hidden: int = 200, n_in: int = N_FEATURES, n_out: int = N_CLASSES,
                seed: int | None = None) -> MLP:
    """A model initialised from `seed` alone, independent of the global RNG state."""
    if seed is None:
        return MLP(n_in, hidden, n_out)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return MLP(n_in, hidden, n_out)
    finally:
        torch.random.set_rng_state(state)
