"""A resume that crosses a learning-rate decay and the end of the temperature schedule gives the
weights of an uninterrupted run, bit for bit, for every method, one trial or a pack.

The other resume tests keep the paper's `lr_step_size` (50,000), so no resume there crosses a
decay and a scheduler that restarts from zero after a resume would go unseen; here the rate
decays every 4 steps and the run is stopped between two decays.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.atomic import torch_load_verified
from trainers.loop import TrainPaths, train_pack
from trainers.spec import Method, TrainSettings, TrainSpec

# 3 epochs of 6 batches (synthetic: 60 rows): 18 steps; the rate decays at steps 4, 8, 12, 16
SMALL = {"epochs": 3, "pgd_steps": 3, "langevin_points": 6, "adv_start_epoch": 1,
         "checkpoint_every": 1000, "n_base": 12, "chunk_size": 4096,
         "lr_step_size": 4, "lr_gamma": 0.5}
STOP_AT = 7           # between the decays at 4 and 8, before both temperature boundaries below
TOTAL = 18
# the temperature reaches temp_end at step 10 (per step) or at epoch 2 = step 12 (per epoch)
SCHEDULES = {"step": {"temp_schedule": "step", "temp_steps": 10},
             "epoch": {"temp_schedule": "epoch", "temp_steps": 2}}
SEEDS = {False: (5,), True: (5, 6, 7)}


def _specs(method: Method, schedule: str, packed: bool) -> list[TrainSpec]:
    settings = TrainSettings.from_dict({**SMALL, **SCHEDULES[schedule]})
    radius = 0.0 if method is Method.REGULAR else 0.1
    return [TrainSpec(method, radius, seed, settings, "synthetic") for seed in SEEDS[packed]]


def _paths(folder: Path, specs: list[TrainSpec]) -> list[TrainPaths]:
    return [TrainPaths(folder / f"model_{s.seed}.pt", folder / f"ckpt_{s.seed}.pt")
            for s in specs]


@pytest.mark.parametrize("packed", [False, True], ids=["one", "pack"])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("method", list(Method))
def test_resume_across_lr_decay_and_temperature_end(method: Method, schedule: str, packed: bool,
                                                    tmp_path: Path,
                                                    torch_one_thread: None) -> None:
    specs = _specs(method, schedule, packed)
    full_paths, part_paths = _paths(tmp_path / "full", specs), _paths(tmp_path / "part", specs)
    full = train_pack(specs, full_paths, progress=False)
    assert all(r.finished and r.steps == TOTAL for r in full)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] == STOP_AT

    part = train_pack(specs, part_paths, progress=False, should_stop=stop)
    assert all(not r.finished and r.steps == STOP_AT for r in part)
    ck = torch_load_verified(part_paths[0].checkpoint)
    assert ck["optimizer"]["lr"] == 0.2 * 0.5  # stopped after one decay, before the next
    rest = train_pack(specs, part_paths, progress=False)
    assert all(r.finished and r.resumed_from == STOP_AT and r.steps == TOTAL for r in rest)
    # the resumed run decayed at 8, 12 and 16, as the uninterrupted one did
    assert torch_load_verified(part_paths[0].checkpoint)["optimizer"]["lr"] == 0.2 * 0.5 ** 4
    for a, b, r, f in zip(full_paths, part_paths, rest, full, strict=True):
        wa = torch.load(a.model, weights_only=True)
        wb = torch.load(b.model, weights_only=True)
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.equal(wa[key], wb[key]), (key, (wa[key] - wb[key]).abs().max().item())
        assert r.model_sha256 == f.model_sha256
