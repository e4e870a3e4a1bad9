"""`drosweep export --layout original`: names, regular once per radius, manifest, checks."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from drosweep.cli import main
from jobs import Paths, expand, load_study, run_pack
from jobs.task import TaskPack

STUDY = """
name = "exp"
root = "{root}"
dataset = "synthetic"
methods = ["regular", "adversarial"]
radii = [0.01, 1]
trials = 2
[training]
epochs = 1
max_steps = 2
batch_size = 20
"""


def test_export_original_layout(tmp_path: Path, capsys: Any) -> None:
    f = tmp_path / "study.toml"
    f.write_text(STUDY.format(root=tmp_path / "root"))
    study = load_study(f)
    dest = tmp_path / "out"
    assert main(["export", str(f), "--to", str(dest)]) == 2
    assert "nothing to export" in capsys.readouterr().err
    specs = expand(study)
    unfinished = "adversarial/eps_1/trial_1"
    run_pack(TaskPack(str(study.root), tuple(s for s in specs if s.key != unfinished),
                      device="cpu"))
    assert main(["export", str(f), "--to", str(dest), "--layout", "original"]) == 0
    out = capsys.readouterr().out
    assert "exported 5 finished trial(s) as 7 file(s)" in out and "1 trial(s) not done" in out
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.pt"))
    assert files == ["adversarial/eps_0.01_trial_0.pt", "adversarial/eps_0.01_trial_1.pt",
                     "adversarial/eps_1.0_trial_0.pt",
                     "regular/eps_0.01_trial_0.pt", "regular/eps_0.01_trial_1.pt",
                     "regular/eps_1.0_trial_0.pt", "regular/eps_1.0_trial_1.pt"]
    paths = Paths(study.root)
    assert (dest / "regular/eps_1.0_trial_1.pt").read_bytes() == \
        paths.model("regular/eps_0/trial_1").read_bytes()
    torch.load(dest / "adversarial/eps_1.0_trial_0.pt", weights_only=True)  # a plain state_dict
    with (dest / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows if r["key"] == "regular/eps_0/trial_0"] == [
        "regular/eps_0.01_trial_0.pt", "regular/eps_1.0_trial_0.pt"]
    for r in rows:
        assert hashlib.sha256((dest / r["file"]).read_bytes()).hexdigest() == r["sha256"]
        assert json.loads(r["spec"])["method"] in ("regular", "adversarial")

    # a model changed after training is refused, and nothing is exported into the root
    paths.model("adversarial/eps_0.01/trial_0").write_bytes(b"changed")
    assert main(["export", str(f), "--to", str(tmp_path / "out2")]) == 2
    assert "sha256 differs from its DONE marker" in capsys.readouterr().err
    assert main(["export", str(f), "--to", str(study.root / "x")]) == 2
    assert "outside the study root" in capsys.readouterr().err
