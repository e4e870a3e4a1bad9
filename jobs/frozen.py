"""The study frozen into its root at the first submit: one root holds one study.

`submit`, `resume` and `status` compare the study they are given with the frozen copy
(`Paths.study_file`), so a changed training setting never mixes its trials with another study's;
what only decides where the trials run or how they are evaluated (the cluster profile, the
evaluation) may change. The grid (methods, radii, trials) may change too: seeds derive from the
base seed and the key alone, so a larger grid adds trials (the frozen copy becomes the union of
both grids, `to_freeze`) and a smaller one is a selection of the root's trials.

The frozen copy also records how the root was launched: the `--set` overrides in its comment
header (`recorded_overrides`), which every later command applies (`load_at_root`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.errors import StudyError
from jobs.overrides import dump_toml
from jobs.paths import Paths
from jobs.radius import radius_tag
from jobs.study import GRID_KEYS, Study, load_study, parse_study

_SET = "# drosweep --set "  # jobs/overrides.py writes one such line per override


def _frozen_text(paths: Paths) -> str | None:
    try:
        return paths.study_file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise StudyError(f"{paths.study_file}: the frozen study file is not UTF-8 text (altered?); "
                         f"restore it from the study file you submitted") from None
    except OSError as exc:
        raise StudyError(f"{paths.study_file}: cannot read the frozen study file "
                         f"({exc.strerror or exc})") from None


def _frozen(study: Study, paths: Paths) -> Study | None:
    text = _frozen_text(paths)
    return None if text is None else parse_study(text, paths.study_file, root=study.root)


def recorded_overrides(text: str) -> tuple[str, ...]:
    """The `--set KEY=VALUE` items a study text was made with (its comment header)."""
    return tuple(ln.removeprefix(_SET) for ln in text.splitlines() if ln.startswith(_SET))


def check_frozen(study: Study, paths: Paths) -> bool:
    """True when the root holds this study (or the same science with another grid); StudyError
    when it holds a different one."""
    frozen = _frozen(study, paths)
    if frozen is None:
        return False
    if frozen.fingerprint != study.fingerprint:
        differ = science_diff(_fixed(frozen), _fixed(study))
        sets = recorded_overrides(frozen.text)
        hint = f"; it was submitted with --set {' --set '.join(sets)}" if sets else ""
        raise StudyError(f"{study.root} already holds a different study ({paths.study_file}; "
                         f"differs in: {'; '.join(differ)}{hint}); use another --root")
    return True


def _fixed(study: Study) -> dict[str, Any]:
    return {k: v for k, v in study.science().items() if k not in GRID_KEYS}


def load_at_root(path: str | Path | None, root: str | Path | None,
                 overrides: Sequence[str] = ()) -> tuple[Study, tuple[str, ...]]:
    """The study a command works on, and the root's recorded overrides it applied unasked
    (none when they change nothing).

    With a study file: the file with the `--set` overrides its root was submitted with, but for
    the keys given again, then the given ones (a given one that changes the science is refused
    by `check_frozen`). Without
    one: the study frozen at `root`, which alone names a submitted study."""
    if path is None:
        if root is None:
            raise StudyError("give the study file, or --root DIR of a submitted study")
        paths = Paths(root)
        if not paths.study_file.is_file():
            raise StudyError(f"no study was submitted at {paths.root} (no "
                             f"{paths.study_file.name}); give the study file")
        return load_study(paths.study_file, root=root, overrides=overrides), ()
    study = load_study(path, root, overrides)
    text = _frozen_text(Paths(study.root))
    given = {_key(o) for o in overrides}
    unasked = tuple(o for o in recorded_overrides(text or "") if _key(o) not in given)
    if not unasked:
        return study, ()
    applied = load_study(path, root, (*unasked, *overrides))
    same = tomllib.loads(applied.text) == tomllib.loads(study.text)  # the file agrees already
    return applied, () if same else unasked


def _key(item: str) -> str:
    return item.partition("=")[0].strip()


def union_text(study: Study, paths: Paths) -> str | None:
    """The study text to freeze when `study` adds methods, radii or trials to the root's grid:
    the union of both (the root's trials stay, whatever the file lists); None when the root's
    grid already holds the study's. Refused when the union passes the study's limits."""
    frozen = _frozen(study, paths)
    if frozen is None:
        return None
    tags = {radius_tag(r) for r in frozen.radii}
    methods = [*frozen.methods, *(m for m in study.methods if m not in frozen.methods)]
    radii = [*frozen.radii, *(r for r in study.radii if radius_tag(r) not in tags)]
    trials = max(frozen.trials, study.trials)
    if (len(methods), len(radii), trials) == (len(frozen.methods), len(frozen.radii),
                                              frozen.trials):
        return None
    if (len(methods), len(radii), trials) == (len(study.methods), len(study.radii),
                                              study.trials):
        return study.text  # the file holds the whole union: freeze it as it is
    data = tomllib.loads(study.text)
    data.update(methods=[m.value for m in methods], radii=radii, trials=trials)
    header = "".join(f"{_SET}{o}\n" for o in recorded_overrides(study.text))
    text = (f"# {study.source} with the grid frozen at {study.root} added:\n{header}\n"
            f"{dump_toml(data)}")
    parse_study(text, paths.study_file, root=study.root)  # within the limits
    return text


def to_freeze(study: Study, paths: Paths) -> str | None:
    """What a submission writes into the root (atomically, before its first job): the study at
    the first submit, the union of both grids when the grid grew; None when the root holds it."""
    if not paths.study_file.exists():
        return study.text
    return union_text(study, paths)


def science_diff(frozen: dict[str, Any], mine: dict[str, Any], prefix: str = "") -> list[str]:
    """Every key where the two differ, dotted down to the setting, with the root's value and
    this one: "training.epochs: 1500 at the root, 40 here"."""
    out = []
    for key in sorted(set(frozen) | set(mine)):
        a, b = frozen.get(key, _MISSING), mine.get(key, _MISSING)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += science_diff(a, b, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}: {_show(a)} at the root, {_show(b)} here")
    return out


_MISSING = object()


def _show(value: Any) -> str:
    return "unset" if value is _MISSING else repr(value)
