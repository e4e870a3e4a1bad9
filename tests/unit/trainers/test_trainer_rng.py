"""Counter-based sampling: exact values, independent of blocks, chunks and packs, and uniform."""

from __future__ import annotations

import math

import torch

from trainers import rng
from trainers.attacks import uniform_ball
from trainers.methods.base import StepContext, step_uniform
from trainers.rng import Purpose
from trainers.smoothmax import uniform_ball_source
from trainers.spec import Method, TrainSpec

MASK = (1 << 64) - 1


def _splitmix_reference(key: int, counter: int) -> int:
    """splitmix64 on Python's unbounded ints: what every device must compute."""
    z = (key + counter * rng.GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_float32_and_float64_match_the_unsigned_reference_bit_for_bit() -> None:
    """torch's signed int64 (wrapping products, masked arithmetic shifts) computes the unsigned
    reference exactly, for keys with the sign bit set or not; floats are exact bit fields."""
    for key in (rng.stream_key(1, Purpose.BALL, 0), rng.stream_key(2, Purpose.DATA, 7), -1, 0):
        keys = rng.keys_tensor(key)
        u32 = rng.uniform(keys, [(0, 5), (3, 4)], [9, 20], 6)[0]       # (5, 4, 6)
        u64 = rng.uniform(keys, [(0, 5), (3, 4)], [9, 20], 6, torch.float64)[0]
        for i in range(5):
            for j in range(4):
                for c in range(6):
                    pair = ((i * 20 + 3 + j) * 3) + c // 2
                    z = _splitmix_reference(key & MASK, pair)
                    want32 = ((z >> 40) if c % 2 == 0 else (z >> 16) & 0xFFFFFF) * 2.0 ** -24
                    assert u32[i, j, c].item() == want32
                    z64 = _splitmix_reference(key & MASK, (i * 20 + 3 + j) * 6 + c)
                    assert u64[i, j, c].item() == (z64 >> 11) * 2.0 ** -53


def test_blocks_and_index_gathers_draw_the_same_values() -> None:
    keys = rng.keys_tensor([rng.stream_key(s, Purpose.BALL, 3) for s in (1, 2, 3)])
    full = rng.uniform(keys, [(0, 40), (0, 300)], [40, 300], 8)
    assert full.shape == (3, 40, 300, 8)
    part = rng.uniform(keys[1:2], [(10, 5), (123, 77)], [40, 300], 8)
    assert torch.equal(part[0], full[1, 10:15, 123:200])
    rows = torch.tensor([39, 2, 17])
    gathered = rng.uniform(keys, [rows, (250, 50)], [40, 300], 8)
    assert torch.equal(gathered, full[:, rows, 250:300])
    odd = rng.uniform(keys, [(0, 40), (0, 300)], [40, 300], 7)
    assert torch.equal(odd, full[..., :7])  # an odd width drops the last pair's second half


def test_ball_samples_are_the_same_for_any_chunk_size_and_pack() -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 5, 8)
    seeds = [rng.stream_key(s, Purpose.BALL, 0) for s in (4, 5, 6)]
    n = 1000

    def all_samples(chunk_size: int, packed: bool) -> torch.Tensor:
        if packed:
            src = uniform_ball_source(x, 0.3, n, chunk_size, seeds)
            return torch.cat([src.chunk(c) for c in range(src.n_chunks)], dim=2)
        per_trial = []
        for i, seed in enumerate(seeds):
            src = uniform_ball_source(x[i], 0.3, n, chunk_size, seed)
            per_trial.append(torch.cat([src.chunk(c) for c in range(src.n_chunks)], dim=1))
        return torch.stack(per_trial)

    reference = all_samples(65536, True)
    assert reference.shape == (3, 5, n, 8)
    assert ((reference - x.unsqueeze(2)).abs() <= 0.3 + 1e-7).all()
    for chunk_size in (1, 97, 1000, 4096):
        for packed in (True, False):
            assert torch.equal(all_samples(chunk_size, packed), reference), (chunk_size, packed)
    # the evaluation's rounds (a subset of points, a range of draws) read the same streams
    some = torch.tensor([4, 0])
    sub = uniform_ball(x[1, some], 0.3, rng.keys_tensor(seeds[1]), 250, 30, n, points=some)
    assert torch.equal(sub, reference[1, some, 250:280])


def test_step_draws_depend_on_seed_step_and_purpose_only() -> None:
    spec = TrainSpec(Method.LANGEVIN, 0.1, 1)
    like = torch.zeros(3, 6, 8)
    ctx = StepContext(spec, step=4, epoch=0, temperature=1.0, seeds=[7, 8, 9])
    u = step_uniform(ctx, Purpose.LANGEVIN, like, repeats=5)
    assert u.shape == (3, 5, 6, 8)
    alone = StepContext(spec, step=4, epoch=0, temperature=1.0, seeds=[8])
    assert torch.equal(step_uniform(alone, Purpose.LANGEVIN, like[:1], repeats=5)[0], u[1])
    later = StepContext(spec, step=5, epoch=0, temperature=1.0, seeds=[7, 8, 9])
    assert not torch.equal(step_uniform(later, Purpose.LANGEVIN, like, repeats=5), u)
    assert not torch.equal(step_uniform(ctx, Purpose.PGD_START, like), u[:, 0])


def _ks_uniform(values: torch.Tensor) -> float:
    """Kolmogorov-Smirnov distance of the values to U[0, 1)."""
    v = torch.sort(values.double().flatten()).values
    n = v.numel()
    upper = torch.arange(1, n + 1, dtype=torch.float64) / n - v
    lower = v - torch.arange(0, n, dtype=torch.float64) / n
    return float(torch.maximum(upper, lower).max())


def test_uniformity_ks_and_pairs_chi_square() -> None:
    """KS at the 0.1% level on 2^20 draws of each kind, and chi-square on 2-D cells of
    neighbouring coordinates (the two halves of one 64-bit value, and adjacent pairs)."""
    n_ks = 1 << 20
    crit = 1.95 / math.sqrt(n_ks)  # KS critical value, alpha = 0.001
    keys = rng.keys_tensor([rng.stream_key(9, Purpose.BALL, 0)])
    u32 = rng.uniform(keys, [(0, n_ks // 8)], [n_ks // 8], 8)
    u64 = rng.uniform(keys, [(0, n_ks // 8)], [n_ks // 8], 8, torch.float64)
    assert float(u32.min()) >= 0 and float(u32.max()) < 1
    for values in (u32, u64, u32[..., 0], u32[..., 1]):
        assert _ks_uniform(values) < crit * (math.sqrt(n_ks / values.numel())), values.shape
    # consecutive steps' streams (keys from one seed) are not the same numbers shifted
    keys_steps = rng.keys_tensor([rng.stream_key(9, Purpose.BALL, s) for s in range(64)])
    across = rng.uniform(keys_steps, [(0, 4096)], [4096], 8)
    assert _ks_uniform(across) < crit * math.sqrt(n_ks / across.numel())
    corr = torch.corrcoef(across[:, :, 0].reshape(64, -1))
    assert float((corr - torch.eye(64)).abs().max()) < 5 / math.sqrt(4096)
    bins = 16
    for a, b in ((0, 1), (1, 2)):  # same 64-bit value; neighbouring values
        cells = (u32[0, :, a] * bins).long() * bins + (u32[0, :, b] * bins).long()
        counts = torch.bincount(cells, minlength=bins * bins).double()
        expected = u32.shape[1] / bins**2
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        # 255 degrees of freedom: mean 255, sd ~22.6; 370 is beyond the 0.1% level
        assert chi2 < 370, (a, b, chi2)


def test_stream_keys_of_a_block_are_the_stream_keys() -> None:
    seeds, purposes = [0, 7, -3, 2**62 + 5], [Purpose.RELU, Purpose.BALL, "eval-x"]
    want = [rng.stream_key(seed, p, step) for step in range(90, 103) for p in purposes
            for seed in seeds]
    assert rng.stream_keys(seeds, purposes, range(90, 103)) == want


def test_permutation_is_a_pure_function_of_its_key() -> None:
    p = rng.permutation(rng.stream_key(1, Purpose.DATA, 0), 1000)
    assert torch.equal(torch.sort(p).values, torch.arange(1000))
    assert torch.equal(p, rng.permutation(rng.stream_key(1, Purpose.DATA, 0), 1000))
    assert not torch.equal(p, rng.permutation(rng.stream_key(1, Purpose.DATA, 1), 1000))
    for seed, n in ((1, 1000), (2, 10430), (3, 1)):  # it is the stable argsort of the draws
        key = rng.stream_key(seed, Purpose.DATA, 5)
        draws = rng.uniform(rng.keys_tensor(key), [(0, n)], [n], 1, torch.float64)[0, :, 0]
        assert torch.equal(rng.permutation(key, n), torch.sort(draws, stable=True).indices)


def test_host_draws_match_device_draws() -> None:
    """The host's few draws (the generalized ReLU's, per eager step) are the device's bits."""
    import random

    from trainers.model import relu_draws

    pick = random.Random(7)
    keys = [rng._signed(pick.getrandbits(64)) for _ in range(500)] + [0, -1, 2**63 - 1, -2**63]
    for count in (1, 2, 5):
        want = rng.uniform(rng.keys_tensor(keys), [(0, count)], [count], 1)[..., 0]
        got = torch.tensor([rng.uniform_host(k, count) for k in keys], dtype=torch.float32)
        assert torch.equal(got, want)
    assert torch.equal(relu_draws(keys, torch.device("cpu")),
                       relu_draws(rng.keys_tensor(keys), torch.device("cpu")))
