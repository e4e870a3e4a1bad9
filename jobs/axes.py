"""The one text of a swept setting's value (`[sweep]`, jobs/study.py) in trial keys and folder
names: `<setting>_<value>`, e.g. `lr_0.1`. The study reader refuses a value without one (it could
not name a folder), the grid writes and reads keys with it (jobs/grid.py).
"""

from __future__ import annotations

import re
from typing import Any

from jobs.radius import radius_tag

AXIS_RE = re.compile(r"^([a-z][a-z0-9_]*)_([A-Za-z0-9][A-Za-z0-9.+-]*)$")
NUMBER_RE = re.compile(r"^[0-9.]+(e[+-]?[0-9]+)?$")


def value_tag(value: Any) -> str:
    """Numbers as radii are written (`0.1`, `1e-05`), integers plainly, booleans as
    `true`/`false`, names as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return radius_tag(value)
    return str(value)


def axis_segment(name: str, value: Any) -> str | None:
    """`<name>_<value>` as a key names it, or None when the value has no such text (a negative
    number, a name with `_`, `/` or other characters a folder must not hold)."""
    segment = f"{name}_{value_tag(value)}"
    match = AXIS_RE.match(segment)
    return segment if match is not None and match.group(1) == name else None


def canonical_number(text: str) -> str | None:
    """How `value_tag` writes the number `text` reads as (None: not a number)."""
    if not NUMBER_RE.match(text):
        return None
    try:
        number: float | int = int(text) if text.isdigit() else float(text)
    except ValueError:
        return None
    return value_tag(number)
