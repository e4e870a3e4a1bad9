"""`drosweep export --layout original`: a study's models in the original code's file layout.

The original training script saves `<save folder>/eps_<r>_trial_<i>.pt`, the radius written by
Python's `str(float)` (`eps_0.1_…`, `eps_1.0_…`), one folder per method; its evaluation scripts
look a `regular` model up under every radius. So each finished model is copied to
`<dest>/<method>/eps_<r>_trial_<i>.pt`, a `regular` model trained once per trial once for every
radius of the study, and `manifest.csv` (key, file, sha256, spec) is written beside them. Every
copy is checked against the sha256 of the trial's DONE marker; unfinished trials are skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_write_bytes, atomic_write_text
from jobs.commands import study_command
from jobs.errors import StudyError
from jobs.grid import evaluation_radii, expand
from jobs.markers import read_done
from jobs.paths import Paths
from jobs.study import Study

LAYOUTS = ("original",)
MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class ExportResult:
    dest: Path
    files: int              # model files written (or already identical)
    trials: int             # finished trials exported
    not_done: tuple[str, ...]
    manifest: Path


def original_name(radius: float, trial: int) -> str:
    return f"eps_{float(radius)}_trial_{trial}.pt"


def export_original(study: Study, dest: Path) -> ExportResult:
    paths = Paths(study.root)
    if dest.resolve() == paths.root.resolve() or paths.root.resolve() in dest.resolve().parents:
        raise StudyError(f"--to {dest}: export outside the study root {paths.root}")
    rows: list[tuple[str, str, str, str]] = []
    not_done: list[str] = []
    trials = 0
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
            rel = Path(spec.method.value) / original_name(radius, spec.trial)
            target = dest / rel
            if not (target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha):
                atomic_write_bytes(target, blob)
            rows.append((spec.key, rel.as_posix(), sha, spec_json))
    if not rows:
        raise StudyError(f"nothing to export: no trial of study {study.name} is done "
                         f"(see `{study_command('status', study)}`)")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("key", "file", "sha256", "spec"))
    writer.writerows(rows)
    atomic_write_text(dest / MANIFEST, out.getvalue())
    return ExportResult(dest, len(rows), trials, tuple(not_done), dest / MANIFEST)
