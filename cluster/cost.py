"""Cost model: work, time and peak device memory of one trial, before it runs.

A trial costs (optimizer steps) × (work per step). Work is counted in forward passes of one
sample through the MLP (2·MACs FLOPs; a backward counts as two forwards) plus a fixed time per
sequential pass (kernel launches and Python: what dominates the many small passes of PGD and
Langevin). Trials of a pack are trained as one batched model: their FLOPs and working memory
add up, while the sequential passes (and their launch overhead) are paid once for the pack.
The smoothed max of `robust`/`langevin` runs one no-grad pass over all N samples and a
backward over the samples that keep weight; late in training (T → 1e-4) few do, so an average
kept share is assumed. Estimates are for planning (packing, time limits, GPU-hours), not
promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobs.study import ClusterProfile
from trainers.datasets import Shape, get_source
from trainers.spec import Method, TrainSpec

KEPT_SHARE = 0.05         # mean share of smoothed-max samples that need a backward
CONTEXT_BYTES = 600e6     # CUDA context, allocator slack, data set and model
BYTES_PER_ACTIVATION = 4 * 3  # fp32 activations, kept for backward, plus temporaries
BYTES_PER_PARAMETER = 4 * 3   # fp32 weights, their gradients and the checkpoint's copy


@dataclass(frozen=True)
class Cost:
    steps: int
    flops: float
    passes: float             # sequential passes (each pays the fixed launch overhead)
    seconds: float            # estimated wall time on one device of the profile
    launch_seconds: float     # the part of `seconds` spent on sequential passes (shared by a pack)
    working_bytes: float      # device memory of the trial's own tensors (a pack adds them up)

    @property
    def peak_mem_bytes(self) -> float:
        """Peak device memory of the trial trained alone."""
        return CONTEXT_BYTES + self.working_bytes

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0


def shape_of(spec: TrainSpec) -> Shape:
    """Features, classes and rows of the trial's data set (from the registry, not read)."""
    return get_source(spec.dataset).shape(spec.data_options)


def train_rows(spec: TrainSpec) -> int:
    rows = shape_of(spec).train_rows
    subset = spec.settings.train_subset
    return rows if subset is None else min(rows, subset)


def steps_of(spec: TrainSpec) -> int:
    s = spec.settings
    rows = train_rows(spec)
    total = s.epochs * math.ceil(rows / s.batch_size)
    return min(total, s.max_steps) if s.max_steps is not None else total


def forward_flops(hidden: int, n_features: int, n_classes: int) -> float:
    """FLOPs of one sample's forward pass through F → H → H → C (Avila: 8 → H → H → 12)."""
    return 2.0 * (n_features * hidden + hidden * hidden + hidden * n_classes)


def task_device_type(profile: ClusterProfile) -> str:
    """'cuda' where the tasks train on GPUs, else 'cpu' (which chunk size the trainer uses)."""
    return "cpu" if profile.device == "cpu" or profile.gpus_per_task == 0 else "cuda"


def chunk_setting(profile: ClusterProfile) -> str:
    """The setting that bounds a trial's memory on the profile's device (for messages)."""
    return "training.cuda_chunk_size" if task_device_type(profile) == "cuda" else \
        "training.chunk_size"


def estimate(spec: TrainSpec, profile: ClusterProfile) -> Cost:
    s = spec.settings
    steps = steps_of(spec)
    shape = shape_of(spec)
    n_in, n_out = shape.n_features, shape.n_classes
    f = forward_flops(s.hidden, n_in, n_out)
    b = s.batch_size
    samples_in_flight = b  # per pass, for the memory estimate
    chunk = s.chunk_for(task_device_type(profile))
    if spec.method is Method.REGULAR:
        flops_step, passes_step = 3.0 * b * f, 1.0
    elif spec.method is Method.ROBUST:
        n = spec.n_samples * b
        chunks = math.ceil(n / chunk)
        flops_step = n * f * (1.0 + 3.0 * KEPT_SHARE)
        passes_step = 1.0 + 2.0 * chunks
        samples_in_flight = min(n, chunk)
    elif spec.method is Method.ADVERSARIAL:
        rows = train_rows(spec)
        attacked = max(0.0, 1.0 - s.adv_start_epoch * math.ceil(rows / b) / max(steps, 1))
        flops_step = 3.0 * b * f * (1.0 + s.pgd_steps * attacked)
        passes_step = 1.0 + s.pgd_steps * attacked
    else:  # LANGEVIN: the trajectory is sequential, then the smoothed max over its points
        n = s.langevin_points * b
        flops_step = 3.0 * b * f * (s.langevin_points - 1) + n * f * (1.0 + 3.0 * KEPT_SHARE)
        passes_step = float(s.langevin_points - 1) + 1.0 + 2.0 * math.ceil(n / chunk)
        samples_in_flight = min(n, chunk)
    flops = flops_step * steps
    passes = passes_step * steps
    launch_seconds = passes * profile.launch_overhead_ms / 1e3
    seconds = flops / (profile.device_tflops * 1e12) + launch_seconds
    width = n_in + 2 * s.hidden + n_out
    params = n_in * s.hidden + s.hidden * s.hidden + s.hidden * n_out + 2 * s.hidden + n_out
    working = samples_in_flight * width * BYTES_PER_ACTIVATION + params * BYTES_PER_PARAMETER
    return Cost(steps=steps, flops=flops, passes=passes, seconds=seconds,
                launch_seconds=launch_seconds, working_bytes=working)


def pack_peak_bytes(cost: Cost, trials: int) -> float:
    """Peak device memory of `trials` trials of one group trained as one batched model."""
    return CONTEXT_BYTES + trials * cost.working_bytes


def pack_seconds(cost: Cost, trials: int) -> float:
    """Wall time of `trials` trials of one group trained as one batched model."""
    return trials * (cost.seconds - cost.launch_seconds) + cost.launch_seconds
