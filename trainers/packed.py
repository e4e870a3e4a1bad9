"""k MLPs of the same shape as one batched model: stacked weights, batched matmuls.

Most trials of the study are latency-bound (tiny batches through a tiny network): training k of
them as one model runs k times the work per kernel launch. Trial i of a pack computes exactly what
an `MLP` holding `trial_state_dict(i)` computes; a model file stays a plain `MLP` state_dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from trainers.model import MLP, generalized_relu, relu_draws

LAYERS = ("layer1", "layer2", "layer3")


class PackedMLP(nn.Module):
    """Input (k, ..., n_in) -> output (k, ..., n_out); trial i sees only its own slice."""

    def __init__(self, models: Sequence[MLP]) -> None:
        super().__init__()
        if not models:
            raise ValueError("a pack needs at least one model")
        self.k = len(models)
        for name in LAYERS:
            layers = [getattr(m, name) for m in models]
            self.register_parameter(f"{name}_weight", nn.Parameter(
                torch.stack([lay.weight.detach() for lay in layers]).clone()))
            self.register_parameter(f"{name}_bias", nn.Parameter(
                torch.stack([lay.bias.detach() for lay in layers]).clone()))
        self.relu_u: Tensor | None  # (layers, k, 1, 1): each trial's draw per hidden layer
        self.register_buffer("relu_u", None, persistent=False)

    def set_relu_keys(self, keys: Sequence[int] | Tensor | None) -> None:
        """Per trial, the stream of its generalized ReLU's draws (None: subgradient 0); trial i
        draws what an `MLP` with key keys[i] draws. A (k,) int64 tensor of keys on the device
        is read there (no host value: a captured step may call this)."""
        if keys is None:
            self.relu_u = None
            return
        table = keys if isinstance(keys, Tensor) else list(keys)
        u = relu_draws(table, next(self.parameters()).device)  # (k, layers)
        self.relu_u = u.t().reshape(-1, self.k, 1, 1)

    def set_relu_values(self, u: Tensor) -> None:
        """This step's draws, made by the caller (`StepStreams`): (layers, k, 1, 1) on the
        device, `relu_draws` of the trials' keys transposed. Stored without nn.Module's
        attribute hooks, which cost an eager CPU step more than its ReLUs."""
        self._buffers["relu_u"] = u

    def _linear(self, name: str, x: Tensor) -> Tensor:
        weight = getattr(self, f"{name}_weight")
        bias = getattr(self, f"{name}_bias")
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    def _act(self, x: Tensor, layer: int) -> Tensor:
        u = self.relu_u
        return generalized_relu(x, None if u is None else u[layer])

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        if lead[0] != self.k:
            raise ValueError(f"input has {lead[0]} trials, the pack has {self.k}")
        h = x.reshape(self.k, -1, x.shape[-1])
        h = self._act(self._linear("layer1", h), 0)
        h = self._act(self._linear("layer2", h), 1)
        out = self._linear("layer3", h)
        return out.reshape(*lead, out.shape[-1])

    def trial_state_dict(self, i: int) -> dict[str, Tensor]:
        """Trial i as a plain `MLP` state_dict (CPU tensors, the model-file format)."""
        return {f"{name}.{kind}": getattr(self, f"{name}_{kind}")[i].detach().cpu().clone()
                for name in LAYERS for kind in ("weight", "bias")}

    @torch.no_grad()
    def load_trial(self, i: int, state: dict[str, Tensor]) -> None:
        for name in LAYERS:
            for kind in ("weight", "bias"):
                getattr(self, f"{name}_{kind}")[i].copy_(state[f"{name}.{kind}"])
