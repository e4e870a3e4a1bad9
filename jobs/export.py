"""`drosweep export --layout original`: a study's models in the original code's file layout.

The original training script saves `<save folder>/eps_<r>_trial_<i>.pt`, the radius written by
Python's `str(float)` (`eps_0.1_…`, `eps_1.0_…`), one folder per method; its evaluation scripts
look a `regular` model up under every radius. So each finished model is copied to
`<dest>/<method>/eps_<r>_trial_<i>.pt`, a `regular` model trained once per trial once for every
radius of the study, and `manifest.csv` (key, file, sha256, spec) is written beside them. Every
copy is checked against the sha256 of the trial's DONE marker; unfinished trials are skipped.

A state_dict alone cannot be used on raw rows, so each model also gets a card beside it
(`eps_<r>_trial_<i>.json`, self-contained) and `manifest.json` holds the cards' shared part and
every model: the raw columns and the features kept (input order), the training set's mean and
std per feature, the class names in output order, the architecture, and the fingerprints of
the study's settings and data files. To predict on raw Avila rows with plain torch:

    import json, numpy as np, torch
    card = json.load(open("out/robust/eps_0.1_trial_0.json"))
    a, s = card["architecture"], card["scaling"]
    net = torch.nn.ModuleDict({n: torch.nn.Linear(i, o) for n, i, o in a["layers"]})
    net.load_state_dict(torch.load("out/robust/eps_0.1_trial_0.pt", weights_only=True))
    cols = [s["columns"].index(f) for f in s["features"]]
    raw = np.loadtxt("avila-ts.txt", delimiter=",", usecols=cols)
    h = torch.tensor((raw - s["mean"]) / s["std"], dtype=torch.float32)
    for name, *_ in a["layers"][:-1]:
        h = torch.relu(net[name](h))
    labels = [card["classes"][i] for i in net[a["layers"][-1][0]](h).argmax(1)]
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from jobs.axes import value_tag
from jobs.commands import study_command
from jobs.errors import StudyError
from jobs.grid import TrialSpec, evaluation_radii, expand
from jobs.markers import read_done
from jobs.paths import Paths
from jobs.study import Study
from trainers.datasets import get_source

LAYOUTS = ("original",)
MANIFEST = "manifest.csv"
MANIFEST_JSON = "manifest.json"
CARD_FORMAT = "drosweep-model/1"


@dataclass(frozen=True)
class ExportResult:
    dest: Path
    files: int              # model files written (or already identical)
    trials: int             # finished trials exported
    not_done: tuple[str, ...]
    manifest: Path
    manifest_json: Path | None = None


def original_name(radius: float, trial: int) -> str:
    return f"eps_{float(radius)}_trial_{trial}.pt"


def data_card(study: Study) -> dict[str, Any]:
    """What every model of the study shares: how raw rows become inputs, the classes, and the
    fingerprints of what was trained. Reads the data set (the training set's statistics)."""
    from trainers.data import load_dataset  # torch: only when exporting

    data = load_dataset(study.dataset, study.data_dir, options=study.data_options)
    scaling = data.input_scaling
    files = {f.name: f.sha256 for f in get_source(study.dataset).files}
    return {"format": CARD_FORMAT, "study": study.name, "dataset": study.dataset,
            "fingerprint": {"settings": study.fingerprint, "data_files": files},
            "scaling": {"columns": list(scaling.columns), "features": list(scaling.features),
                        "mean": list(scaling.mean), "std": list(scaling.std)},
            "classes": list(data.classes)}


def model_card(shared: dict[str, Any], spec: TrialSpec, sha: str, n_in: int,
               n_out: int) -> dict[str, Any]:
    """One model's self-contained card: the shared part, its architecture and its trial."""
    from trainers.model import architecture  # torch: only when exporting

    return {**shared, "key": spec.key, "sha256": sha, "seed": spec.train_spec.seed,
            "architecture": architecture(n_in, spec.train_spec.settings.hidden, n_out),
            "spec": spec.train_spec.to_dict()}


def export_original(study: Study, dest: Path) -> ExportResult:
    paths = Paths(study.root)
    if dest.resolve() == paths.root.resolve() or paths.root.resolve() in dest.resolve().parents:
        raise StudyError(f"--to {dest}: export outside the study root {paths.root}")
    rows: list[tuple[str, str, str, str]] = []
    not_done: list[str] = []
    trials = 0
    shared = data_card(study)  # before any write: missing data is one line, nothing written
    n_in, n_out = len(shared["scaling"]["features"]), len(shared["classes"])
    models: list[dict[str, Any]] = []
    for spec in expand(study):
        marker = read_done(paths, spec)
        if marker is None:
            not_done.append(spec.key)
            continue
        blob = paths.model(spec).read_bytes()
        sha = hashlib.sha256(blob).hexdigest()
        if sha != marker.model_sha256:
            raise StudyError(f"{paths.model(spec)}: sha256 differs from its DONE marker "
                             f"(changed after training?); not exported")
        trials += 1
        spec_json = json.dumps(marker.spec, sort_keys=True)
        for radius in evaluation_radii(study, spec):
            # swept values name a folder each, so two values never write one file
            swept = [f"{name}_{value_tag(value)}" for name, value in spec.axes]
            rel = Path(spec.method.value, *swept) / original_name(radius, spec.trial)
            target = dest / rel
            if not (target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha):
                atomic_write_bytes(target, blob)
            card = model_card(shared, spec, sha, n_in, n_out)
            atomic_write_json(target.with_suffix(".json"), card)
            rows.append((spec.key, rel.as_posix(), sha, spec_json))
            models.append({"key": spec.key, "file": rel.as_posix(),
                           "card": rel.with_suffix(".json").as_posix(), "sha256": sha,
                           "seed": spec.train_spec.seed, "architecture": card["architecture"]})
    if not rows:
        raise StudyError(f"nothing to export: no trial of study {study.name} is done "
                         f"(see `{study_command('status', study)}`)")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("key", "file", "sha256", "spec"))
    writer.writerows(rows)
    atomic_write_text(dest / MANIFEST, out.getvalue())
    atomic_write_json(dest / MANIFEST_JSON, {**shared, "models": models})
    return ExportResult(dest, len(rows), trials, tuple(not_done), dest / MANIFEST,
                        dest / MANIFEST_JSON)
