"""Runs a pack's training steps: eagerly, or with the static stage captured in a CUDA graph.

Most trials are latency-bound: a regular step is ~30 small kernels, PGD's 40 steps ~1,500, a
Langevin trajectory ~15,000, each launched from Python. On CUDA the static stage of a step
(trainers.methods: the regular step, the adversarial step with its PGD, the Langevin trajectory)
is captured once per variant and batch shape into a `torch.cuda.CUDAGraph` on static input
buffers, and every later step copies its inputs in and replays it: one launch. A stage that is
the whole step (regular, adversarial) includes the SGD update, so it reads the learning rate
from a 0-d device tensor; the smoothed max (robust, and Langevin after its trajectory) reads its
selection on the host once per step, so it runs eagerly after the replay, from the host's
temperature.

A replay runs the eager step's kernels on the same values, so it is built to give the same
bits (a stage reads per-step values only from its tensor inputs, see `StaticContext`);
`drosweep doctor` checks that on a GPU, graph against eager, weight for weight. On the
CPU, or with the setting `cuda_graphs = false`, every step runs eagerly. The capture logic
(static buffers, warm-up that leaves no trace, gradients and draws re-bound after a replay) is
the same for `ReplayCapture`, which replays by re-running the stage on the static buffers and
copying the results into the captured tensors, as a graph does: it checks the logic on the CPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from trainers.methods.base import (
    MethodParts,
    Stage,
    StaticContext,
    StepContext,
    set_relu_draws,
)

# warm-up runs before a capture (lazy initialisation of cuBLAS and autograd's streams)
WARMUP = 2

Slot = tuple[Any, str]  # an attribute (object, name) that a captured step assigns


def sgd_update(params: Sequence[Tensor], lr: Tensor) -> None:
    """p <- p - lr * grad with lr a 0-d tensor on the parameters' device, so a captured update
    reads this step's rate. On the CPU this is bit-identical to torch.optim.SGD's update
    (`p.add_(grad, alpha=-lr)` with lr a float; checked in the tests)."""
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.addcmul_(p.grad, lr, value=-1)


class Capture(Protocol):
    def capture(self, fn: Callable[[], tuple[Tensor, ...]], reset: Callable[[], None],
                slots: Sequence[Slot]) -> tuple[Callable[[], None], tuple[Tensor, ...]]:
        """Capture fn, leaving no trace (`reset` restores the state a run changes); returns
        (replay, the outputs that each replay refreshes in place)."""
        ...


class CudaGraphCapture:
    """torch.cuda.CUDAGraph, warmed up on a side stream (as autograd in a graph requires)."""

    def capture(self, fn: Callable[[], tuple[Tensor, ...]], reset: Callable[[], None],
                slots: Sequence[Slot]) -> tuple[Callable[[], None], tuple[Tensor, ...]]:
        del slots  # a graph writes into the captured tensors themselves
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                reset()
                fn()
        torch.cuda.current_stream().wait_stream(side)
        reset()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = fn()
        return graph.replay, outputs


class ReplayCapture:
    """A graph's semantics without a GPU: a replay re-runs fn on the static buffers, copies its
    results into the tensors the capture produced (outputs and the assigned slots, e.g. .grad),
    and leaves every slot bound to what it was before the replay, as a graph does."""

    def capture(self, fn: Callable[[], tuple[Tensor, ...]], reset: Callable[[], None],
                slots: Sequence[Slot]) -> tuple[Callable[[], None], tuple[Tensor, ...]]:
        reset()
        outputs = fn()
        captured = [getattr(obj, name) for obj, name in slots]
        reset()  # a capture does not run the step

        def replay() -> None:
            before = [getattr(obj, name) for obj, name in slots]
            for obj, name in slots:
                if name == "grad":
                    setattr(obj, name, None)  # the captured backward assigned, not added
            fresh = fn()
            with torch.no_grad():
                for out, new in zip(outputs, fresh, strict=True):
                    out.copy_(new)
                for (obj, name), old, cap in zip(slots, before, captured, strict=True):
                    new = getattr(obj, name)
                    if cap is not None and new is not None:
                        cap.copy_(new)
                    setattr(obj, name, old)
        return replay, outputs


class _Graph:
    """One captured stage (one variant, one set of input shapes) and its static inputs."""

    def __init__(self, backend: Capture, stage: Stage, update: bool, model: nn.Module,
                 params: list[Tensor], slots: list[Slot], spec: Any, x: Tensor, y: Tensor,
                 keys: Tensor, lr: Tensor) -> None:
        self.x, self.y, self.keys, self.lr = x.clone(), y.clone(), keys.clone(), lr.clone()
        self.slots = slots
        static = StaticContext(spec, self.keys)

        def run() -> tuple[Tensor, ...]:
            set_relu_draws(model, static)
            outs = stage.run(model, self.x, self.y, static)
            if update:
                sgd_update(params, self.lr)
            return outs

        with torch.no_grad():
            saved = [p.detach().clone() for p in params]

        def reset() -> None:
            with torch.no_grad():
                for p, value in zip(params, saved, strict=True):
                    p.copy_(value)
                    p.grad = None

        try:
            self.replay, self.outputs = backend.capture(run, reset, slots)
        except BaseException:
            reset()  # a failed warm-up or capture leaves the step's state as it found it
            raise
        self.bound = [getattr(obj, name) for obj, name in slots]

    def __call__(self, x: Tensor, y: Tensor, keys: Tensor, lr: Tensor) -> tuple[Tensor, ...]:
        self.x.copy_(x)
        self.y.copy_(y)
        self.keys.copy_(keys)
        self.lr.copy_(lr)
        self.replay()
        for (obj, name), value in zip(self.slots, self.bound, strict=True):
            if value is not None:
                setattr(obj, name, value)  # the graph's .grad and draws are this step's
        return self.outputs


class StepRunner:
    """One training step of a pack: the ReLU draws, the method's static stage, its eager finish
    and the SGD update (p -= lr * grad, lr a 0-d tensor). With a `capture` backend the static
    stage (and the update, when the stage is the whole step) runs as a captured graph per
    (variant, input shapes); otherwise everything runs eagerly.

    Each call needs the parameters' .grad cleared (None), as after
    `optimizer.zero_grad(set_to_none=True)`: a captured backward overwrites where an eager one
    would add."""

    def __init__(self, parts: MethodParts, capture: Capture | None = None) -> None:
        self.parts, self.capture = parts, capture
        self.graphs: dict[tuple[Any, ...], _Graph | None] = {}  # None: capture failed, eager
        self._trained: tuple[nn.Module, list[Tensor]] | None = None  # a model, its parameters

    def _params(self, model: nn.Module) -> list[Tensor]:
        """The model's trained parameters, listed once per model (a step is too short to walk
        the module tree every time)."""
        if self._trained is None or self._trained[0] is not model:
            self._trained = (model, [p for p in model.parameters() if p.requires_grad])
        return self._trained[1]

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext,
                 lr: Tensor) -> Tensor:
        params = self._params(model)
        if any(p.grad is not None for p in params):
            raise RuntimeError("a training step needs the gradients cleared first "
                               "(optimizer.zero_grad(set_to_none=True))")
        static = ctx.static(x.device)
        stage = self.parts.stage(ctx)
        whole = self.parts.finish is None
        if stage is None:
            set_relu_draws(model, ctx)
            outs: tuple[Tensor, ...] = ()
        else:
            graph = self._graph(stage, whole, model, params, x, y, ctx, static.keys_table, lr)
            if graph is None:
                set_relu_draws(model, ctx)
                outs = stage.run(model, x, y, static)
            else:
                outs = graph(x, y, static.keys_table, lr)
                if whole:
                    return outs[0]
        if whole:
            sgd_update(params, lr)
            return outs[0]
        assert self.parts.finish is not None
        losses = self.parts.finish(model, x, y, ctx, outs)
        sgd_update(params, lr)
        return losses

    def _graph(self, stage: Stage, whole: bool, model: nn.Module, params: list[Tensor],
               x: Tensor, y: Tensor, ctx: StepContext, keys: Tensor,
               lr: Tensor) -> _Graph | None:
        """The graph of this stage and these shapes, captured on first use; None (run eagerly)
        without a capture backend or when its capture failed (said once, in one line)."""
        if self.capture is None:
            return None
        key = (stage.name, whole, tuple(x.shape), x.dtype, tuple(y.shape), tuple(keys.shape))
        if key not in self.graphs:
            slots: list[Slot] = [(p, "grad") for p in params]
            if hasattr(model, "relu_u"):
                slots.append((model, "relu_u"))
            try:
                self.graphs[key] = _Graph(self.capture, stage, whole, model, params, slots,
                                          ctx.spec, x, y, keys, lr)
            except RuntimeError as exc:
                self.graphs[key] = None
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                warnings.warn(f"CUDA graph capture of the {stage.name} step failed ({reason}); "
                              f"it runs eagerly (same results; cuda_graphs = false skips the "
                              f"capture)", stacklevel=3)
        return self.graphs[key]


def default_capture(device: torch.device, enabled: bool) -> Capture | None:
    """CUDA graphs on CUDA when the setting allows them; eager (None) elsewhere."""
    return CudaGraphCapture() if enabled and device.type == "cuda" else None


__all__ = ["WARMUP", "Capture", "CudaGraphCapture", "ReplayCapture", "StepRunner",
           "default_capture", "sgd_update"]
