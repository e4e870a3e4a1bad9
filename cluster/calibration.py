"""Measured training rates of one device model: the file the GPU check writes and the planner reads.

The cost model's built-in constants are guesses; a calibration file holds what was measured on a
device model (GPU name, or CPU model and threads): seconds per optimizer step of a pack of
`pack` trials of one (method, radius), averaged as a trial would see them. It is JSON, written
atomically, and refused with one line when it is not one of ours.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.errors import ClusterError
from common.atomic import atomic_write_json
from trainers.spec import Method

FORMAT = "drosweep-calibration/1"


@dataclass(frozen=True)
class Rate:
    method: Method
    radius: float
    pack: int                 # trials trained together as one batched model
    seconds_per_step: float   # wall seconds of one optimizer step of the whole pack
    note: str = ""            # how it was measured (e.g. "T=1e-4 after 200 regular steps")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method.value, "radius": self.radius, "pack": self.pack,
                "seconds_per_step": self.seconds_per_step, "note": self.note}


@dataclass(frozen=True)
class Calibration:
    device_model: str         # what `device_model()` names: the key a rate is valid for
    created: str              # ISO time of the measurement
    versions: dict[str, str]  # torch, CUDA, driver: what produced the numbers
    rates: tuple[Rate, ...]

    def seconds_per_step(self, method: Method, radius: float, pack: int) -> float | None:
        """The measured rate for exactly this (method, radius, pack), else None."""
        for r in self.rates:
            if r.method is method and r.pack == pack and math.isclose(r.radius, radius):
                return r.seconds_per_step
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "device_model": self.device_model, "created": self.created,
                "versions": dict(self.versions), "rates": [r.to_dict() for r in self.rates]}


def _rate(data: Any, where: str) -> Rate:
    if not isinstance(data, dict):
        raise ClusterError(f"{where}: a rate must be a table, got {type(data).__name__}")
    try:
        method = Method(data["method"])
        radius, pack, sps = float(data["radius"]), data["pack"], float(data["seconds_per_step"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ClusterError(f"{where}: bad rate {data!r} ({type(exc).__name__}: {exc})") from None
    if not isinstance(pack, int) or isinstance(pack, bool) or pack < 1:
        raise ClusterError(f"{where}: 'pack' must be a positive integer, got {pack!r}")
    if not (math.isfinite(radius) and radius >= 0 and math.isfinite(sps) and sps > 0):
        raise ClusterError(f"{where}: radius must be >= 0 and seconds_per_step > 0, got {data!r}")
    return Rate(method, radius, pack, sps, str(data.get("note", "")))


def from_dict(data: Any, where: str = "calibration") -> Calibration:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ClusterError(f"{where}: not a drosweep calibration file (format {got!r}, "
                           f"expected {FORMAT!r})")
    model = data.get("device_model")
    if not isinstance(model, str) or not model:
        raise ClusterError(f"{where}: 'device_model' must be a non-empty string")
    rates = data.get("rates")
    if not isinstance(rates, list):
        raise ClusterError(f"{where}: 'rates' must be a list")
    versions = data.get("versions", {})
    return Calibration(model, str(data.get("created", "")),
                       {str(k): str(v) for k, v in versions.items()} if isinstance(versions, dict)
                       else {}, tuple(_rate(r, f"{where}: rates[{i}]") for i, r in enumerate(rates)))


def load(path: str | Path) -> Calibration:
    """Read and validate a calibration file; any problem is one ClusterError line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClusterError(f"{p}: calibration file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ClusterError(f"{str(p)!r}: cannot read calibration file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClusterError(f"{p}: calibration file is not JSON (line {exc.lineno}: "
                           f"{exc.msg})") from None
    return from_dict(data, str(p))


def save(path: str | Path, device_model: str, rates: Iterable[Rate], *, created: str,
         versions: dict[str, str]) -> Calibration:
    """Write a calibration file atomically; returns what was written."""
    cal = Calibration(device_model, created, dict(versions), tuple(rates))
    atomic_write_json(path, cal.to_dict())
    return cal
