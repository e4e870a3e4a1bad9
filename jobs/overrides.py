"""`--set KEY=VALUE`: change a study's settings on the command line without editing its file.

The overrides are applied to the parsed TOML and the result is written back as TOML text, which
is then validated exactly like a file (unknown keys, types, ranges) and is what `submit` freezes
into the root, with a comment naming the overrides. A value is read as a TOML value
(`10`, `1e-3`, `true`, `["a", "b"]`, `"text"`); anything that is not one is taken as a string, so
`--set cluster.partition=a100` needs no quotes.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Sequence
from typing import Any

from jobs.errors import StudyError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(_BARE_KEY.match(p) for p in parts):
        raise StudyError(f"--set {item!r}: expected KEY=VALUE with a dotted key such as "
                         f"training.epochs=10")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts, value


def apply_overrides(text: str, source: str, overrides: Sequence[str]) -> str:
    """The study text with the overrides applied (validation is the caller's: parse_study)."""
    if not overrides:
        return text
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{source}: malformed TOML: {exc}") from None
    for item in overrides:
        parts, value = parse_override(item)
        table = data
        for i, part in enumerate(parts[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise StudyError(f"--set {item!r}: {'.'.join(parts[:i + 1])} is not a table")
        table[parts[-1]] = value
    header = "".join(f"# drosweep --set {item}\n" for item in overrides)
    return f"# {source} with command-line overrides:\n{header}\n{dump_toml(data)}"


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def toml_value(v: Any) -> str:
    """One value as TOML (what `dump_toml` and the study template write)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise StudyError(f"cannot write {v!r} ({type(v).__name__}) as TOML")


def dump_toml(data: dict[str, Any], prefix: str = "") -> str:
    """TOML for what tomllib reads from a study file (no dates: a study has none)."""
    plain = [f"{_key(k)} = {toml_value(v)}\n" for k, v in data.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    out = "".join(plain)
    for k, v in tables:
        name = f"{prefix}{_key(k)}"
        out += f"\n[{name}]\n" + dump_toml(v, prefix=f"{name}.")
    return out
