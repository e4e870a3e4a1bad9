"""The batch order of an epoch goes to the device once, and batches are its consecutive slices."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from trainers.data import make_synthetic
from trainers.device import FP32
from trainers.loop import PackState, TrainPaths
from trainers.spec import Method, TrainSettings, TrainSpec


def test_order_copied_once_per_epoch() -> None:
    data = make_synthetic(n_train=50, n_test=10)
    settings = TrainSettings(batch_size=20)
    specs = [TrainSpec(Method.REGULAR, 0.0, s, settings, "synthetic") for s in (1, 2)]
    paths = [TrainPaths(Path(os.devnull), Path(os.devnull)) for _ in specs]
    pack = PackState(specs, paths, [data] * 2, torch.device("cpu"), FP32)
    assert pack.n_batches == 3
    orders = []
    for _ in range(2 * pack.n_batches):
        pack.run_step()
        orders.append(pack.order)
        if pack.batch_index == 0:  # an epoch ended: the next one draws a new order
            assert pack.order is None
    first, second = orders[:2], orders[3:5]
    assert first[0] is first[1] and second[0] is second[1]  # one copy per epoch
    assert orders[2] is None and orders[5] is None
    assert first[0] is not None and second[0] is not None
    assert not torch.equal(first[0], second[0])
    for order in (first[0], second[0]):
        for row in order:  # a permutation of the training rows
            assert torch.equal(row.sort().values, torch.arange(50))
