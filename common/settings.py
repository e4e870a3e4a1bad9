"""Settings declared once, on their dataclass fields: a one-line doc, bounds and choices.

`setting(...)` puts a `Rule` in a field's metadata; `read` turns a TOML table into the dataclass
and `check_fields` checks any instance, both from those declarations and the field types, so a
table (training, evaluation, cluster, a data set's `[data]`) has no list of names to keep in step
with its fields, and `jobs/template.py` writes the annotated study template from the same rules.
Each table words its refusals its own way (`Wording`): the messages users and tests know stay as
they are. Standard library only: the study parser and `status` load this without torch.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_KEY = "setting"


class Kind(enum.Enum):
    """What a field holds, from its type: how it is read and checked."""

    BOOL = "bool"
    INT = "int"
    NUMBER = "number"
    TEXT = "text"
    CHOICE = "choice"   # a str with choices, or an Enum
    LIST = "list"       # tuple[str, ...]: a list of one-line strings
    TABLE = "table"     # dict[str, str]


@dataclass(frozen=True)
class Rule:
    """What one setting allows. `minimum` is included unless `above`, `maximum` unless `below`;
    `bounds` spells the interval where the numbers alone would not read well; `over` is the
    message (with the value) past the maximum, where it explains more than the bound."""

    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    below: bool = False
    choices: tuple[str, ...] = ()
    bounds: str = ""
    over: Callable[[Any], str] | None = None


def setting(default: Any = dataclasses.MISSING, doc: str = "", *,
            factory: Callable[[], Any] | None = None, minimum: float | None = None,
            maximum: float | None = None, above: bool = False, below: bool = False,
            choices: Sequence[str] = (), bounds: str = "",
            over: Callable[[Any], str] | None = None) -> Any:
    """A dataclass field with its rule: `epochs: int = setting(1500, "...", minimum=1)`."""
    rule = Rule(doc, minimum, maximum, above, below, tuple(choices), bounds, over)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={_KEY: rule})
    return dataclasses.field(default=default, metadata={_KEY: rule})


@dataclass(frozen=True)
class Declared:
    """One field as the reader sees it."""

    name: str
    kind: Kind
    optional: bool          # None is allowed (unset)
    rule: Rule
    enum_type: type[enum.Enum] | None
    path: bool              # a file path, made absolute when read
    default: Any

    @property
    def choices(self) -> tuple[str, ...]:
        if self.enum_type is not None:
            return tuple(str(m.value) for m in self.enum_type)
        return self.rule.choices


_DECLARED: dict[type, tuple[Declared, ...]] = {}


def declared(cls: type) -> tuple[Declared, ...]:
    """The fields of a settings dataclass with their kinds and rules, in declaration order
    (worked out once per class)."""
    if cls not in _DECLARED:
        _DECLARED[cls] = _declare(cls)
    return _DECLARED[cls]


def _declare(cls: type) -> tuple[Declared, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind_type = hints[f.name]
        optional = isinstance(kind_type, types.UnionType) and type(None) in typing.get_args(kind_type)
        if optional:
            kind_type = next(a for a in typing.get_args(kind_type) if a is not type(None))
        rule = f.metadata.get(_KEY, Rule())
        enum_type = kind_type if isinstance(kind_type, type) and issubclass(kind_type, enum.Enum) \
            else None
        kind = _kind(kind_type, rule, cls.__name__, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
            else f.default
        out.append(Declared(f.name, kind, optional, rule, enum_type, bool(f.metadata.get("path")),
                            default))
    return tuple(out)


def _kind(kind_type: Any, rule: Rule, owner: str, name: str) -> Kind:
    if kind_type is bool:
        return Kind.BOOL
    if kind_type is int:
        return Kind.INT
    if kind_type is float:
        return Kind.NUMBER
    if kind_type is str:
        return Kind.CHOICE if rule.choices else Kind.TEXT
    if isinstance(kind_type, type) and issubclass(kind_type, enum.Enum):
        return Kind.CHOICE
    if typing.get_origin(kind_type) is tuple:
        return Kind.LIST
    if typing.get_origin(kind_type) is dict:
        return Kind.TABLE
    raise TypeError(f"setting '{owner}.{name}': unsupported type {kind_type!r}")


@dataclass(frozen=True)
class Wording:
    """How one table words its refusals. `key` names a setting ("setting 'lr'", "key
    'cluster.mem_gb':"); `unknown` words unknown keys (given sorted, with the sorted allowed
    names); `spelled` spells bounds out ("an integer >= 1 and <= 64") instead of naming them ("a
    positive integer"); `finite_apart` says "must be finite" of an infinite positive number."""

    error: type[Exception]
    key: Callable[[str], str]
    unknown: Callable[[list[str], list[str]], str]
    spelled: bool = False
    finite_apart: bool = False
    as_given: bool = False
    text: str = "must be a non-empty string"
    one_line: str = ""       # the message of a text of several lines ("": `text`'s)
    items: str = "must be a list of non-empty one-line strings, got {value!r}"
    table: str = "must be a table"


def _one_line(value: Any) -> bool:
    return isinstance(value, str) and not any(c in value for c in "\n\r")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _within(d: Declared, value: float) -> bool:
    r = d.rule
    low = r.minimum is None or (value > r.minimum if r.above else value >= r.minimum)
    high = r.maximum is None or (value < r.maximum if r.below else value <= r.maximum)
    return low and high


def _interval(d: Declared) -> str:
    r = d.rule
    if r.bounds:
        return r.bounds
    return f"{'(' if r.above else '['}{r.minimum:g}, {r.maximum:g}{')' if r.below else ']'}"


def _phrase(d: Declared, w: Wording) -> str:
    """What the setting must be, without the value."""
    r = d.rule
    if d.kind is Kind.BOOL:
        return "must be true or false"
    if d.kind is Kind.CHOICE:
        if w.spelled:
            quoted = [f"'{c}'" for c in d.choices]
            return f"must be {', '.join(quoted[:-1])} or {quoted[-1]}"
        return f"must be one of {list(d.choices)}"
    unset = " or unset" if d.optional and not w.spelled else ""
    if d.kind is Kind.INT:
        if w.spelled:
            top = f" and <= {r.maximum:,}" if r.maximum is not None else ""
            return f"must be an integer >= {r.minimum}{top}"
        if r.bounds:
            return f"must be in {r.bounds}{unset}"
        if r.minimum is None:
            return f"must be an integer{unset}"
        what = "a positive integer" if r.minimum == 1 else f"an integer >= {r.minimum}"
        return f"must be {what}{unset}"
    if d.kind is Kind.NUMBER:
        if w.spelled:
            return (f"must be a number in {_interval(d)}" if r.maximum is not None
                    else f"must be a number > {r.minimum:g}")
        if r.minimum is None:
            return f"must be a finite number{unset}"
        if r.maximum is None and not r.bounds:
            return (f"must be a positive number{unset}" if r.above and r.minimum == 0
                    else f"must be a finite number >= {r.minimum:g}{unset}")
        return f"must be in {_interval(d)}{unset}"
    if d.kind is Kind.TEXT:
        return w.text
    if d.kind is Kind.TABLE:
        return w.table
    return w.items


def _problem(d: Declared, value: Any, w: Wording) -> str | None:
    """Why `value` does not fit the declaration (the message without the key), or None."""
    if value is None and d.optional:
        return None
    got = f"{_phrase(d, w)}, got {value!r}"
    if d.kind is Kind.BOOL:
        return None if isinstance(value, bool) else got
    if d.kind is Kind.INT:
        if not isinstance(value, int) or isinstance(value, bool):
            return got
        if d.rule.maximum is not None and value > d.rule.maximum and d.rule.over is not None:
            return d.rule.over(value)
        return None if _within(d, value) else got
    if d.kind is Kind.NUMBER:
        if not _is_number(value) or not _within(d, value):
            return got
        if not math.isfinite(value):
            positive = d.rule.above and d.rule.maximum is None
            return f"must be finite, got {value!r}" if w.finite_apart and positive else got
        return None
    if d.kind is Kind.CHOICE:
        if d.enum_type is not None:
            return None if isinstance(value, d.enum_type) else got
        return None if isinstance(value, str) and value in d.choices else got
    if d.kind is Kind.TEXT:
        if not isinstance(value, str) or not value.strip():
            return got
        if not _one_line(value):
            return w.one_line or got
        return None
    if d.kind is Kind.TABLE:
        fits = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in value.items())
        return None if fits else got
    fits = isinstance(value, tuple) and all(_one_line(v) and v for v in value)
    return None if fits else w.items.format(value=list(value) if isinstance(value, tuple)
                                             else value)  # as TOML gave it


def _shown(bound: float) -> str:
    return f"{int(bound):,}" if bound == int(bound) else f"{bound:g}"


def describe(d: Declared) -> str:
    """What the setting allows, for a reader of the study template ("an integer >= 1")."""
    r = d.rule
    if d.kind is Kind.BOOL:
        what = "true or false"
    elif d.kind is Kind.CHOICE:
        what = "one of " + ", ".join(d.choices)
    elif d.kind in (Kind.INT, Kind.NUMBER):
        what = "an integer" if d.kind is Kind.INT else "a number"
        if r.bounds:
            what += f" in {r.bounds}"
        else:
            parts = [f"{'>' if r.above else '>='} {_shown(r.minimum)}" if r.minimum is not None
                     else "",
                     f"{'<' if r.below else '<='} {_shown(r.maximum)}" if r.maximum is not None
                     else ""]
            what = " ".join([what, " and ".join(p for p in parts if p)]).strip()
    elif d.kind is Kind.TEXT:
        what = "a one-line string"
    elif d.kind is Kind.LIST:
        what = "a list of one-line strings"
    else:
        what = "a table of name = value"
    return what + (", or unset" if d.optional else "")


def check_fields(obj: Any, wording: Wording, shown: Mapping[str, str] | None = None) -> None:
    """Raise `wording.error` for the first field whose value its declaration refuses; `shown`
    names a field as the table gave it (a former name)."""
    for d in declared(type(obj)):
        problem = _problem(d, getattr(obj, d.name), wording)
        if problem is not None:
            name = (shown or {}).get(d.name, d.name)
            raise wording.error(f"{wording.key(name)} {problem}")


def _convert(d: Declared, value: Any, numbers: bool = True) -> Any:
    """The TOML value as the field holds it, where it fits (what does not is left for the check
    to refuse, with the value as given); `numbers`: integers of a float field become floats."""
    if d.kind is Kind.NUMBER and _is_number(value) and numbers:
        return float(value)
    if d.kind is Kind.CHOICE and d.enum_type is not None:
        try:
            return d.enum_type(value)
        except (ValueError, TypeError):
            return value
    if d.kind is Kind.LIST and isinstance(value, list):
        return tuple(value)
    if d.kind is Kind.TEXT and d.path and isinstance(value, str) and value.strip() \
            and _one_line(value):
        return str(Path(value).expanduser().absolute())
    return value


def read(cls: type[Any], table: Mapping[str, Any], wording: Wording,
         old: Mapping[str, str] | None = None, fixed: Mapping[str, Any] | None = None) -> Any:
    """The dataclass `cls` from one table: unknown keys refused, every value converted and
    checked by its declaration, then the instance's own `validate()` (what involves several
    fields). `old` maps a former name to its field (the caller refuses both given at once);
    `fixed` gives defaults the table may override."""
    old = old or {}
    names = [d.name for d in declared(cls)]
    allowed = sorted(names + list(old))
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise wording.error(wording.unknown(unknown, allowed))
    by_name = {d.name: d for d in declared(cls)}
    values: dict[str, Any] = dict(fixed or {})
    shown: dict[str, str] = {}
    for key, value in table.items():
        name = old.get(key, key)
        if name != key:
            shown[name] = key
        values[name] = _convert(by_name[name], value, numbers=not wording.as_given)
    obj = cls(**values)
    check_fields(obj, wording, shown)
    if wording.as_given:
        obj = dataclasses.replace(obj, **{name: float(value) for name, value in values.items()
                                          if by_name[name].kind is Kind.NUMBER
                                          and _is_number(value)})
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj
