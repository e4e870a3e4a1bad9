"""Loading a trained model file defensively: a bad file fails one trial, never the reduction.

A model file is a plain `state_dict` of the MLP (`layer1..3.weight/bias`). Anything else —
truncated, not a torch file, a checkpoint, other keys or shapes, non-finite weights — raises
`ModelFileError` with the reason.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from common.atomic import differing_prefixes, sha256_bytes
from reduce.errors import ModelFileError
from trainers.model import MLP

EXPECTED_KEYS = frozenset(f"layer{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias"))


def _read(path: Path, expected_sha256: str | None) -> object:
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        data = path.read_bytes()  # read once: the bytes hashed are the bytes loaded
    except OSError as exc:
        raise ModelFileError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if expected_sha256 is not None:
        actual = sha256_bytes(data)
        if actual != expected_sha256:
            shown, certified = differing_prefixes(actual, expected_sha256)
            raise ModelFileError(f"{path}: sha256 {shown} does not match its DONE marker "
                                 f"({certified}): altered or corrupted after "
                                 f"training; not evaluated")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            ValueError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: not a readable torch file ({first[:200]})") from None


def load_model(path: str | os.PathLike[str], n_in: int, n_out: int,
               device: torch.device | str = "cpu", expected_sha256: str | None = None) -> MLP:
    """The MLP stored at `path`, checked against the data set's input and class counts and,
    when given, against the sha256 its DONE marker certifies."""
    path = Path(path)
    state = _read(path, expected_sha256)
    if not isinstance(state, Mapping):
        raise ModelFileError(f"{path}: not a state_dict (found {type(state).__name__})")
    keys = set(state)
    if keys != EXPECTED_KEYS:
        extra, missing = sorted(map(str, keys - EXPECTED_KEYS)), sorted(EXPECTED_KEYS - keys)
        raise ModelFileError(f"{path}: not an MLP state_dict (unexpected keys {extra[:5]}, "
                             f"missing {missing})")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: state_dict values must all be tensors")
    w1 = state["layer1.weight"]
    hidden = int(w1.shape[0]) if w1.dim() == 2 else -1
    expected = {"layer1.weight": (hidden, n_in), "layer1.bias": (hidden,),
                "layer2.weight": (hidden, hidden), "layer2.bias": (hidden,),
                "layer3.weight": (n_out, hidden), "layer3.bias": (n_out,)}
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape or hidden < 1:
            raise ModelFileError(f"{path}: {key} has shape {tuple(state[key].shape)}, expected "
                                 f"{shape} for {n_in} features and {n_out} classes")
        if not state[key].is_floating_point() or not bool(torch.isfinite(state[key]).all()):
            raise ModelFileError(f"{path}: {key} holds non-finite or non-float values")
    model = MLP(n_in, hidden, n_out)
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return model.to(device).eval()
