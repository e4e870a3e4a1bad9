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
from jobs.pack import TaskPack
from studies import write_study


def test_export_original_layout(tmp_path: Path, capsys: Any) -> None:
    f = write_study(tmp_path, name="exp", methods=["regular", "adversarial"], radii=[0.01, 1],
                    trials=2, training={"epochs": 1, "max_steps": 2, "batch_size": 20})
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



def test_an_exported_model_predicts_raw_rows_from_its_card_alone(
        tmp_path: Path, avila_data_dir: Path, capsys: Any) -> None:
    """The recipe of jobs/export.py: the card's architecture and scaling, plain torch, raw
    Avila rows (unstandardized, all 10 columns) give the reduction's predictions and accuracy."""
    import numpy as np

    from reduce.accuracy import _logits, clean_accuracy
    from reduce.model_file import load_model
    from trainers.data import load_dataset

    f = write_study(tmp_path, name="card", dataset=None, data_dir=str(avila_data_dir),
                    training={"epochs": 1, "max_steps": 6, "batch_size": 50, "hidden": 16,
                              "train_subset": 300})
    study = load_study(f)
    (spec,) = expand(study)
    run_pack(TaskPack(str(study.root), (spec,), device="cpu"))
    dest = tmp_path / "out"
    assert main(["export", str(f), "--to", str(dest)]) == 0
    assert "manifest.json" in capsys.readouterr().out

    card = json.loads((dest / "regular/eps_0.1_trial_0.json").read_text())
    a, s = card["architecture"], card["scaling"]
    assert s["features"] == ["F1", "F2", "F3", "F4", "F5", "F7", "F8", "F9"]  # F6, F10 dropped
    assert card["classes"] == list("ABCDEFGHIWXY") and a["hidden"] == [16, 16]
    assert card["fingerprint"]["settings"] == study.fingerprint
    net = torch.nn.ModuleDict({n: torch.nn.Linear(i, o) for n, i, o in a["layers"]})
    net.load_state_dict(torch.load(dest / "regular/eps_0.1_trial_0.pt", weights_only=True))
    cols = [s["columns"].index(name) for name in s["features"]]
    raw = np.loadtxt(avila_data_dir / "avila-ts.txt", delimiter=",", usecols=cols)
    h = torch.tensor((raw - s["mean"]) / s["std"], dtype=torch.float32)
    with torch.no_grad():
        for name, *_ in a["layers"][:-1]:
            h = torch.relu(net[name](h))
        predicted = net[a["layers"][-1][0]](h).argmax(1)

    data = load_dataset(study.dataset, avila_data_dir)
    model = load_model(Paths(study.root).model(spec), data.n_features, data.n_classes)
    with torch.no_grad():
        assert torch.equal(predicted, _logits(model, data.x_test).argmax(1))
    labels = [card["classes"].index(line.rsplit(",", 1)[1].strip()) for line in
              (avila_data_dir / "avila-ts.txt").read_text().splitlines() if line.strip()]
    accuracy = int((predicted == torch.tensor(labels)).sum()) / len(labels)
    assert accuracy == clean_accuracy(model, data.x_test, data.y_test)

    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["scaling"] == s and [m["key"] for m in manifest["models"]] == [spec.key]
    assert manifest["models"][0]["sha256"] == card["sha256"]
