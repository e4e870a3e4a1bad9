"""The paper's network: MLP 8 -> 200 -> 200 -> 12 with the "generalized ReLU".

The generalized ReLU takes, where its input is exactly 0, a random subgradient in [0, 1) instead of
PyTorch's fixed 0: one uniform draw per layer from a counter stream (trainers.rng) whose key the
caller sets (training: per trial and step), so the draw is the same on every device and needs
neither the global RNG nor a host synchronisation. Without a key the subgradient is 0.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from trainers import rng
from trainers.datasets.avila import AVILA_CLASSES, AVILA_FEATURES

# a bare MLP() has the paper's shape; trainings and evaluations size it by their data set
N_FEATURES = AVILA_FEATURES
N_CLASSES = len(AVILA_CLASSES)


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
        """grad where x > 0, u * grad where x == 0 exactly, else 0.

        On CUDA the correction at exact zeros always runs, so no step waits on the host and a
        CUDA graph can capture it. On the CPU the host looks first (`bool(zero.any())`, no wait
        there) and skips the correction when there is no exact zero, which is nearly always:
        running it unconditionally (a multiply and a select over the activations) made the
        adversarial step 7-16% slower on a 2-core CPU (interleaved timings, same process)."""
        x, u = ctx.saved_tensors
        out = torch.ops.aten.threshold_backward(grad, x, 0)  # grad where x > 0, else 0
        zero = x == 0
        if x.device.type == "cuda" or bool(zero.any()):
            out = out.addcmul_(zero.to(grad.dtype), grad * u.to(grad.dtype))
        return out, None


def relu_draws(keys: list[int] | Tensor, device: torch.device, layers: int = 2) -> Tensor:
    """(k, layers): the subgradient draw of each hidden layer for each stream key. A (k,) int64
    tensor of keys is drawn from where it lies, with device ops (what a CUDA graph captures).
    Keys on the host are drawn on the host (the same bits) for the CPU, where some twenty tiny
    ops would cost an eager step more than its own arithmetic; for a GPU they are copied and
    drawn there, so the step adds no host-to-device copy of its own."""
    if isinstance(keys, Tensor):
        return rng.uniform(keys, [(0, layers)], [layers], 1)[..., 0]
    if torch.device(device).type == "cpu":
        return torch.tensor([rng.uniform_host(key, layers) for key in keys], dtype=torch.float32)
    return rng.uniform(rng.keys_tensor(keys, device), [(0, layers)], [layers], 1)[..., 0]


def generalized_relu(x: Tensor, u: Tensor | None) -> Tensor:
    """ReLU whose gradient at exact zeros is u (broadcast against x); plain ReLU when u is None
    or no gradient is taken."""
    if u is None or not (torch.is_grad_enabled() and x.requires_grad):
        return torch.relu(x)
    return _GeneralizedReLU.apply(x, u)


class MLP(nn.Module):
    """Parameter names `layer1`, `layer2`, `layer3` are the model-file format: keep them."""

    def __init__(self, n_in: int = N_FEATURES, hidden: int = 200, n_out: int = N_CLASSES) -> None:
        super().__init__()
        self.layer1 = nn.Linear(n_in, hidden)
        self.layer2 = nn.Linear(hidden, hidden)
        self.layer3 = nn.Linear(hidden, n_out)
        self.relu_u: Tensor | None
        self.register_buffer("relu_u", None, persistent=False)

    def set_relu_key(self, key: int | None) -> None:
        """The stream of the generalized ReLU's draws (None: subgradient 0 at exact zeros)."""
        self.relu_u = None if key is None else relu_draws([key], self.layer1.weight.device)[0]

    def forward(self, x: Tensor) -> Tensor:
        u = self.relu_u
        h = generalized_relu(self.layer1(x), None if u is None else u[0])
        h = generalized_relu(self.layer2(h), None if u is None else u[1])
        return self.layer3(h)


def architecture(n_in: int, hidden: int, n_out: int) -> dict[str, Any]:
    """The model file's network in plain words (exported beside each model): each `nn.Linear`
    as [state_dict name, inputs, outputs], ReLU between them (the generalized ReLU's subgradient
    only matters in training), logits in class order."""
    layers = [["layer1", n_in, hidden], ["layer2", hidden, hidden], ["layer3", hidden, n_out]]
    return {"type": "mlp", "input_dim": n_in, "hidden": [hidden, hidden], "classes": n_out,
            "activation": "relu", "layers": layers}


def build_model(hidden: int = 200, n_in: int = N_FEATURES, n_out: int = N_CLASSES,
                seed: int | None = None) -> MLP:
    """A model initialised from `seed` alone on a generator of its own: the global RNG is neither
    read nor touched. The values are nn.Linear's default initialisation drawn in its order (what
    `torch.manual_seed(seed); MLP()` gives)."""
    if seed is None:
        return MLP(n_in, hidden, n_out)
    with torch.device("meta"):
        model = MLP(n_in, hidden, n_out)
    model = model.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (model.layer1, model.layer2, model.layer3):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(layer.weight.shape[1])
            nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    return model
