"""The annotated study template (`drosweep new`): generated from the settings' declarations
(common.settings), so it lists every key with its true default and a doc, and parses as a valid
study."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.settings import declared
from drosweep.cli import main
from jobs import load_study, parse_study
from jobs.evaluation import EvalSettings
from jobs.study import _TOP_KEYS, ClusterProfile
from jobs.template import OPTIONAL_KEYS, REQUIRED_KEYS, TABLES, UNSET, template
from trainers.datasets import DataOptions
from trainers.spec import TrainSettings


def test_every_setting_has_a_doc() -> None:
    missing = [f"{table}.{d.name}" for table, cls, _ in TABLES for d in declared(cls)
               if not d.rule.doc.strip()]
    assert not missing, f"settings without a one-line doc: {missing}"


def test_template_names_every_key_of_the_study_file() -> None:
    listed = [k for k, _, _ in REQUIRED_KEYS + OPTIONAL_KEYS] + [t for t, _, _ in TABLES] + [
        "data", "sweep"]
    assert sorted(listed) == sorted(_TOP_KEYS)
    text = template()
    assert "# [data]:" in text and "# [sweep]:" in text
    for table, cls, _ in TABLES:
        section = text.split(f"[{table}]\n")[1].split("\n\n")[0]
        assert re.findall(r"^# (\w+) = ", section, re.M) == [d.name for d in declared(cls)]


def test_template_parses_to_the_defaults() -> None:
    study = parse_study(template(), Path("new.toml"))
    assert study.settings == TrainSettings() and study.cluster == ClusterProfile()
    assert study.evaluation is None and study.data_options == DataOptions()
    assert (study.dataset, study.base_seed, study.regular_per_radius, study.chain_reduce,
            study.data_dir) == ("avila", 0, False, False, None)


def test_uncommented_template_shows_true_defaults() -> None:
    """Every default line, uncommented, gives the default: the template cannot show a wrong one."""
    text = re.sub(r"^# (\w+ = (?!" + UNSET + r"))", r"\1", template(), flags=re.M)
    assert text.count("\n# ") < template().count("\n# ")
    study = parse_study(text, Path("new.toml"))
    assert study.settings == TrainSettings() and study.cluster == ClusterProfile()
    assert study.evaluation == EvalSettings()
    plain = parse_study(template(), Path("new.toml"))
    assert study.fingerprint == plain.fingerprint and study.chain_reduce == plain.chain_reduce


def test_new_writes_the_template_and_never_overwrites(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sub" / "study.toml"
    assert main(["new", str(path)]) == 0
    assert path.read_text() == template()
    assert f"wrote {path}" in capsys.readouterr().out
    load_study(path)
    path.write_text("mine\n")
    assert main(["new", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "already exists" in err
    assert path.read_text() == "mine\n"
