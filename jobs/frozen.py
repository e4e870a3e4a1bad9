"""The study frozen into its root at the first submit: one root holds one study.

`submit`, `resume` and `status` compare the study they are given with the frozen copy
(`Paths.study_file`), so a changed grid or training setting never mixes its trials with another
study's; what only decides where the trials run or how they are evaluated (the cluster profile,
the evaluation) may change.
"""

from __future__ import annotations

from typing import Any

from jobs.errors import StudyError
from jobs.paths import Paths
from jobs.study import Study, parse_study


def check_frozen(study: Study, paths: Paths) -> bool:
    """True when the root holds this study; StudyError when it holds a different one."""
    try:
        text = paths.study_file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return False
    except UnicodeDecodeError:
        raise StudyError(f"{paths.study_file}: the frozen study file is not UTF-8 text (altered?); "
                         f"restore it from the study file you submitted") from None
    except OSError as exc:
        raise StudyError(f"{paths.study_file}: cannot read the frozen study file "
                         f"({exc.strerror or exc})") from None
    frozen = parse_study(text, paths.study_file, root=study.root)
    if frozen.fingerprint != study.fingerprint:
        differ = science_diff(frozen.science(), study.science())
        sets = [ln.removeprefix("# drosweep --set ") for ln in text.splitlines()
                if ln.startswith("# drosweep --set ")]
        hint = f"; it was submitted with --set {' --set '.join(sets)}" if sets else ""
        raise StudyError(f"{study.root} already holds a different study ({paths.study_file}; "
                         f"differs in: {'; '.join(differ)}{hint}); use another --root")
    return True


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
