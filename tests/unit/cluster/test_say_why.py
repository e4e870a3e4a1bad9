"""Messages that say why: an unreadable DONE marker, and two hashes shown far enough to differ."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch

from cluster import TrialState, study_status
from common.atomic import (
    VERIFIED_FORMAT,
    IntegrityError,
    differing_prefixes,
    torch_bytes,
    torch_load_verified,
)
from drosweep.cli import main
from jobs import Paths, TaskPack, expand, load_study, run_pack
from jobs.integrity import model_problem
from studies import write_study


def test_prefixes_grow_until_they_differ() -> None:
    a = "4a7881f25cb5" + "0" * 40 + "abcdefghijkl"
    b = a[:-3] + "X" + a[-2:]
    shown, kept = differing_prefixes(a, b)
    assert shown != kept and a.startswith(shown) and b.startswith(kept)
    assert differing_prefixes("ab" * 32, "cd" * 32) == ("ab" * 6, "cd" * 6)


def _hashes(message: str) -> list[str]:
    return re.findall(r"\b[0-9a-f]{12,64}\b", message)


def test_a_flip_in_the_stored_hash_shows_two_different_hashes(tmp_path: Path) -> None:
    payload = torch_bytes({"w": torch.arange(4.0)})
    digest = hashlib.sha256(payload).hexdigest()
    flipped = digest[:50] + ("0" if digest[50] != "0" else "1") + digest[51:]
    path = tmp_path / "f.ckpt"
    path.write_bytes(torch_bytes({"format": VERIFIED_FORMAT, "sha256": flipped,
                                  "payload": torch.frombuffer(bytearray(payload),
                                                              dtype=torch.uint8)}))
    with pytest.raises(IntegrityError) as err:
        torch_load_verified(path)
    first, second = _hashes(str(err.value))
    assert first != second and digest.startswith(first) and flipped.startswith(second)
    problem = model_problem(Paths(tmp_path), "regular/eps_0/trial_0", flipped)
    assert problem is not None  # no model file: missing, named
    model = Paths(tmp_path).model("regular/eps_0/trial_0")
    model.parent.mkdir(parents=True)
    model.write_bytes(payload)
    problem = model_problem(Paths(tmp_path), "regular/eps_0/trial_0", flipped)
    assert problem is not None
    first, second = _hashes(problem)
    assert first != second


@pytest.mark.parametrize("content", [b"", b'{"key": "regular/eps_0/tr'])
def test_status_says_a_done_marker_is_unreadable(content: bytes, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    f = write_study(tmp_path, name="why", radii=[0.01], trials=2,
                    training={"epochs": 1, "max_steps": 2, "batch_size": 20})
    study = load_study(f)
    trials = expand(study)
    run_pack(TaskPack(str(study.root), tuple(trials), device="cpu"))
    paths = Paths(study.root)
    paths.done(trials[0]).write_bytes(content)
    status = study_status(study)
    torn = next(t for t in status.trials if t.trial.key == trials[0].key)
    # trained to the end and checkpointed, not done: stopped (`missing` is never started)
    assert torn.state is TrialState.STOPPED and "DONE marker unreadable" in torn.detail
    assert next(t for t in status.trials if t.trial.key == trials[1].key).detail == ""
    capsys.readouterr()
    assert main(["status", str(f), "-v"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(trials[0].key))
    assert "DONE marker unreadable" in line and str(paths.done(trials[0])) in line
