"""Trained-looking models and DONE markers for the reduction's tests, without training."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from common.atomic import atomic_torch_save, sha256_file
from jobs import Paths, Study, TrialSpec, expand, parse_study, write_done
from reduce import EvalSettings
from studies import study_text
from trainers.data import make_synthetic
from trainers.model import build_model

QUICK = EvalSettings(test_subset=60, ball_samples=40, mean_samples=20, pgd_steps=3,
                     ga_population=6, ga_generations=3, ga_elite=1, chunk_size=4096,
                     batch_size=32)


def tiny_study(root: Path, name: str = "tiny", trials: int = 2) -> Study:
    text = study_text(root, name=name, methods=["regular", "robust"], radii=[0.05, 0.1],
                      trials=trials, training={"epochs": 1, "hidden": 16})
    return parse_study(text, root / "study-source.toml")


@functools.lru_cache(maxsize=16)
def trained_state(seed: int) -> dict[str, torch.Tensor]:
    """A small MLP fitted to the synthetic data in a fraction of a second (accuracy >> 1/12)."""
    data = make_synthetic()
    model = build_model(hidden=16, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data.x_train), data.y_train).backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def save_model(paths: Paths, trial: TrialSpec, seed: int, scale: float = 1.0) -> str:
    state = {k: v * scale for k, v in trained_state(seed).items()}
    atomic_torch_save(state, paths.model(trial))
    return mark_done(paths, trial)


def mark_done(paths: Paths, trial: TrialSpec) -> str:
    sha = sha256_file(paths.model(trial))
    write_done(paths, trial, model_sha256=sha, steps=1, epochs=1, wall_s=0.0, final_loss=0.0,
               resumed_from=0)
    return sha


def finish_all(study: Study) -> list[TrialSpec]:
    paths = Paths(study.root)
    trials = expand(study)
    for i, trial in enumerate(trials):
        save_model(paths, trial, seed=i)
    return trials


def state_dict_of(hidden: int) -> dict[str, torch.Tensor]:
    return build_model(hidden=hidden, seed=0).state_dict()
