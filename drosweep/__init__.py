"""drosweep: the smoothed robust pointwise training study, planned, run and reduced on SLURM.

From Python: `drosweep.load`, `plan`, `submit`, `status`, `results` (drosweep/api.py); they load
torch, pandas and submitit on first use, so `import drosweep` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("load", "plan", "results", "status", "submit")


def __getattr__(name: str) -> Any:
    if name in _API:
        from drosweep import api

        return getattr(api, name)
    raise AttributeError(f"module 'drosweep' has no attribute {name!r}")


__all__ = ["__version__", "load", "plan", "results", "status", "submit"]
