"""Counter-based random numbers: every draw is a pure function of (stream key, position).

A stream key is a 64-bit hash of (trial seed, purpose, step, ...) computed on the host. A draw is
the splitmix64 finalizer of `key + counter * G` (G the golden-ratio increment), computed with torch
integer ops on whatever device holds the data, where the counter is the draw's position in a
row-major array (e.g. point, sample index, coordinate). There is no generator state, so:

- CPU and CUDA draw bit-identical numbers (integer ops are exact, and a float is built from the
  top bits of its integer, exactly representable);
- a draw depends on its own position only, never on how the draws are chunked, nor on how many
  trials are packed together;
- a pack of k trials draws with one set of kernels (a (k,) tensor of keys broadcast against the
  counters), and nothing has to be checkpointed, restored or captured.

torch's int64 is signed: products and sums wrap modulo 2^64 (two's complement) like unsigned
ones, but a right shift is arithmetic, so every shift is followed by a mask of the bits it keeps.
Each 64-bit value gives two float32 (its bits 63..40 and 39..16), so coordinates come in pairs
(2p, 2p + 1); a float64 takes the top 53 bits of one value per coordinate. Float32 and float64
draws of the same stream are therefore different numbers (dtype is part of the stream).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

# Names this scheme (hash, key derivation, layout of positions): results computed under another
# scheme drew other samples (the evaluation's settings digest includes it).
SCHEME = "splitmix64-counter/1"
_MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


class Purpose(str, enum.Enum):
    """What a stream is for: each purpose of a trial has its own streams."""

    BALL = "ball"            # robust: the uniform ball samples of a step
    PGD_START = "pgd-start"  # adversarial: the random start of a step's attack
    LANGEVIN = "langevin"    # langevin: the noise of a step's trajectory
    RELU = "relu"            # generalized ReLU: the subgradients drawn for a step's exact zeros
    DATA = "data"            # the data order of an epoch
    EVAL_BALL = "eval-ball"  # evaluation: ball samples of a model at a radius
    EVAL_PGD = "eval-pgd"    # evaluation: the PGD random start of a model at a radius
    EVAL_RELU = "eval-relu"  # evaluation: the generalized ReLU's draws in PGD


def _signed(value: int) -> int:
    """A 64-bit pattern as the int64 torch stores."""
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


def stream_key(seed: int, purpose: Purpose | str, *parts: int | float | str) -> int:
    """The 64-bit key (as a signed int) of one stream: a hash of the seed, purpose and parts."""
    name = purpose._value_ if isinstance(purpose, Purpose) else purpose
    text = ":".join(map(str, (seed, name, *parts)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little", signed=True)


def stream_keys(seeds: Sequence[int], purposes: Sequence[Purpose | str],
                steps: Iterable[int]) -> list[int]:
    """`stream_key(seed, purpose, step)` for every step, purpose and seed, in that order (seed
    fastest): the same keys, with the text of each (seed, purpose) made once, for a block of
    steps of a pack (trainers.methods.StepStreams)."""
    heads = [f"{seed}:{p._value_ if isinstance(p, Purpose) else p}:"
             for p in purposes for seed in seeds]
    sha, from_bytes = hashlib.sha256, int.from_bytes
    return [from_bytes(sha(f"{head}{step}".encode()).digest()[:8], "little", signed=True)
            for step in steps for head in heads]


def keys_tensor(keys: int | Sequence[int], device: torch.device | str = "cpu") -> Tensor:
    """(k,) int64 keys on `device`. The host-to-device copy is asynchronous (a pageable source
    is staged at once), so the host does not wait for the device's queued work."""
    values = [keys] if isinstance(keys, int) else list(keys)
    return torch.tensor(values, dtype=torch.int64).to(device, non_blocking=True)


def _times_golden(index: Tensor, stride: int) -> Tensor:
    """index * stride * G modulo 2^64: one axis's term of the scaled counter (the map is linear
    modulo 2^64, so the terms of all axes are summed)."""
    return index.to(torch.int64) * _signed(stride * GOLDEN)


def _mix_(z: Tensor) -> Tensor:
    """splitmix64's finalizer, in place on int64 (the masks make the shifts logical)."""
    t = torch.empty_like(z)
    for shift, mult in ((30, _M1), (27, _M2), (31, 0)):
        torch.bitwise_right_shift(z, shift, out=t)
        t.bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(t)
        if mult:
            z.mul_(_signed(mult))
    return z


def _as_index(axis: Tensor | tuple[int, int], device: torch.device) -> Tensor:
    if isinstance(axis, Tensor):
        return axis.to(device=device, dtype=torch.int64).reshape(-1)
    start, width = axis
    return torch.arange(start, start + width, device=device, dtype=torch.int64)


def uniform(keys: Tensor, axes: Sequence[Tensor | tuple[int, int]], sizes: Sequence[int],
            d: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """U[0, 1) draws of k streams at chosen positions of a row-major array of shape
    (*sizes, d): shape (k, len(axis_0), ..., d).

    keys: (k,) int64 on the output's device. axes: per leading axis, the positions drawn, a
    (start, width) range or a 1-D index tensor (sizes[0] sets no stride: any value will do).
    Element (t, i0, ..., l) is coordinate l at position (axes[0][i0], ...) of stream keys[t]: the
    same value whatever else is drawn with it.
    """
    if len(axes) != len(sizes):
        raise ValueError(f"{len(axes)} axes for an array of {len(sizes)} leading sizes")
    wide = dtype == torch.float64
    slots = d if wide else (d + 1) // 2
    z = _mixed(keys, axes, sizes, slots)
    if wide:
        return _top53(z).to(torch.float64).mul_(2.0 ** -53)
    u = _float32_pairs(z, d)
    return u if dtype == torch.float32 else u.to(dtype)


def uniform_at(keys: Tensor, positions: Tensor, d: int,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """U[0, 1) draws at chosen flat positions, one list per stream: keys (k,), positions (k, L)
    int64 row-major indices of the stream's leading axes -> (k, L, d). Element (t, i, l) is
    `uniform(keys[t:t+1], [(0, n)], [n], d, dtype)[0, positions[t, i], l]` bit for bit (any n
    larger than the positions): a pass that needs a few scattered samples of each trial (the
    kept ones) draws only those, not the whole chunks that hold them."""
    if positions.dim() != 2 or positions.shape[0] != keys.numel():
        raise ValueError(f"need positions (k, L) for k = {keys.numel()} keys, "
                         f"got {tuple(positions.shape)}")
    wide = dtype == torch.float64
    slots = d if wide else (d + 1) // 2
    z = _mix_(keys.reshape(-1, 1, 1) + _times_golden(positions.to(keys.device), slots).unsqueeze(-1)
              + _times_golden(torch.arange(slots, device=keys.device), 1))
    if wide:
        return _top53(z).to(torch.float64).mul_(2.0 ** -53)
    u = _float32_pairs(z, d)
    return u if dtype == torch.float32 else u.to(dtype)


def _float32_pairs(z: Tensor, d: int) -> Tensor:
    """Mixed values (..., slots) -> float32 draws (..., d): bits 63..40 and 39..16 of each value
    give coordinates 2p and 2p + 1 (m * 2^-24, exact)."""
    slots = z.shape[-1]
    pair = torch.empty((*z.shape, 2), dtype=torch.int64, device=z.device)
    torch.bitwise_right_shift(z, 40, out=pair[..., 0])
    torch.bitwise_right_shift(z, 16, out=pair[..., 1])
    pair.bitwise_and_((1 << 24) - 1)
    u = pair.view(*z.shape[:-1], 2 * slots).to(torch.float32).mul_(2.0 ** -24)
    return u[..., :d].contiguous() if 2 * slots != d else u


def _top53(z: Tensor) -> Tensor:
    """In place: each value's top 53 bits, the integer m of its float64 draw m * 2^-53."""
    return z.bitwise_right_shift_(11).bitwise_and_((1 << 53) - 1)


def _mixed(keys: Tensor, axes: Sequence[Tensor | tuple[int, int]], sizes: Sequence[int],
           slots: int) -> Tensor:
    """The 64-bit values of `uniform`'s positions, `slots` per position, before they become
    floats: (k, len(axis_0), ..., slots) int64."""
    dev = keys.device
    strides, stride = [], slots
    for size in reversed(sizes):
        strides.append(stride)
        stride *= int(size)
    strides.reverse()
    ndim = len(sizes) + 1
    z = keys.reshape(-1, *([1] * ndim))
    for a, (axis, step) in enumerate(zip(axes, strides, strict=True)):
        term = _times_golden(_as_index(axis, dev), step)
        z = z + term.view(*([1] * (a + 1)), -1, *([1] * (ndim - a - 1)))
    z = z + _times_golden(torch.arange(slots, device=dev), 1)
    return _mix_(z)


def uniform_host(key: int, count: int) -> list[float]:
    """The first `count` float32 draws of a one-coordinate stream, computed on the host:
    `uniform(keys_tensor(key), [(0, count)], [count], 1)[0, :, 0]` bit for bit. For the few
    draws of a step (the generalized ReLU's, two per trial), where some twenty tiny device ops
    would cost more than the step's own arithmetic; a float32 draw is m * 2^-24 with m < 2^24,
    so the Python float is exact."""
    out = []
    for position in range(count):
        z = (key + position * GOLDEN) & _MASK64
        z = ((z ^ (z >> 30)) * _M1) & _MASK64
        z = ((z ^ (z >> 27)) * _M2) & _MASK64
        z ^= z >> 31
        out.append(((z >> 40) & ((1 << 24) - 1)) * 2.0 ** -24)
    return out


def permutation(key: int, n: int) -> Tensor:
    """A random permutation of range(n) (on the CPU), a pure function of the key: the stable
    argsort of the stream's n float64 draws, sorted as their integers m (draw = m * 2^-53, so
    the same order and ties), which sorts faster than the floats."""
    return torch.sort(_top53(_mixed(keys_tensor(key), [(0, n)], [n], 1))[0, :, 0],
                      stable=True).indices


__all__ = ["GOLDEN", "SCHEME", "Purpose", "keys_tensor", "permutation", "stream_key", "stream_keys",
           "uniform", "uniform_at", "uniform_host"]
