#!/usr/bin/env python3
"""Mutation check, run on demand (not in CI: minutes of CPU): one-line bugs of our own, put one
at a time into a scratch copy of the project, each run against the tests that should catch it.

A mutant is *killed* when its tests fail, *survives* when they pass: a survivor is a promise
the suite does not hold. The mutants cover the modules that hold the promises: the loop and
checkpoints (resume), the smoothed max, the sampler, submission and its lock, the study reader.

    .venv/bin/python scripts/mutation.py                 # the working tree's code and tests
    .venv/bin/python scripts/mutation.py --rev main      # a commit's (its tests, its code)
    .venv/bin/python scripts/mutation.py --only loop-scheduler,submission-lock

Before the mutants, the unmutated copy runs every selected test once: a test that fails
without a bug would count every mutant as killed, so a failing baseline stops the run.
Test files absent at the revision are left out of a mutant's selection (older revisions lack
newer tests); a mutant whose line is absent there is reported as not applicable.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str             # file of the project
    old: str              # text that occurs exactly once in it
    new: str
    tests: tuple[str, ...]  # pytest node ids (file or file::test[id]); the cheapest first
    why: str


RESUME_REGULAR = ("tests/unit/trainers/test_trainer_resume_schedules.py::"
                  "test_resume_across_lr_decay_and_temperature_end[regular-step-one]",
                  "tests/unit/trainers/test_trainer_resume_schedules.py::"
                  "test_resume_across_lr_decay_and_temperature_end[regular-epoch-pack]",
                  "tests/unit/trainers/test_trainer_resume.py::test_stop_and_resume_is_bit_identical[regular]")

MUTANTS: tuple[Mutant, ...] = (
    Mutant("loop-scheduler", "trainers/loop.py",
           '            self.scheduler.load_state_dict(ck["scheduler"])\n', "            pass\n",
           RESUME_REGULAR, "the learning-rate schedule restarts at a resume"),
    Mutant("loop-lr", "trainers/loop.py",
           '                group["lr"] = ck["optimizer"]["lr"]\n', "                pass\n",
           RESUME_REGULAR, "the decayed learning rate is not restored at a resume"),
    Mutant("loop-batch-index", "trainers/loop.py",
           'ck["step"], ck["epoch"], ck["batch_index"]', 'ck["step"], ck["epoch"], 0',
           RESUME_REGULAR, "a resume starts its epoch over"),
    Mutant("checkpoint-fallback", "trainers/checkpoint.py",
           'trying the previous checkpoint", stacklevel=2)\n            continue\n',
           'trying the previous checkpoint", stacklevel=2)\n            return None\n',
           ("tests/unit/trainers/test_trainer_resume.py::test_corrupt_checkpoint_falls_back_to_previous",
            "tests/unit/jobs/test_jobs_integrity.py::test_flipped_checkpoint_falls_back_to_previous"),
           "a damaged newest checkpoint restarts the trial from scratch"),
    Mutant("checkpoint-foreign-lr", "trainers/checkpoint.py",
           'RESUMABLE_DIFFERENCES = {"max_steps",', 'RESUMABLE_DIFFERENCES = {"lr", "max_steps",',
           ("tests/unit/trainers/test_trainer_resume.py::test_foreign_checkpoint_is_refused",),
           "a checkpoint of another learning rate is resumed"),
    Mutant("smoothmax-prune", "trainers/spec.py",
           "    prune_threshold: float = 1e-13\n", "    prune_threshold: float = 1e-6\n",
           ("tests/unit/trainers/test_trainer_spec_data.py", "tests/unit/trainers/test_trainer_smoothmax.py",
            "tests/unit/jobs/test_jobs_study.py"),
           "the default pruning threshold 1e-6 instead of 1e-13"),
    Mutant("smoothmax-prune-call", "trainers/smoothmax.py",
           "temperature: float, *, threshold: float = 1e-13,",
           "temperature: float, *, threshold: float = 1e-6,",
           ("tests/unit/trainers/test_trainer_smoothmax.py", "tests/test_trainer_smoothmax_preselect.py"),
           "the smoothed max's own pruning threshold 1e-6 instead of 1e-13"),
    Mutant("smoothmax-temperature", "trainers/smoothmax.py",
           "torch.logsumexp(c / temperature, -1) for c in ce]",
           "torch.logsumexp(c, -1) for c in ce]",
           ("tests/unit/trainers/test_trainer_smoothmax.py",),
           "the normalizer forgets the temperature"),
    Mutant("sampler-pack-noise", "trainers/methods/langevin.py",
           "step_uniform(ctx, Purpose.LANGEVIN, x, s.langevin_points - 1))",
           "step_uniform(ctx, Purpose.LANGEVIN, x, s.langevin_points - 1)[:1]"
           ".expand(x.shape[0], -1, -1, -1))",
           ("tests/unit/trainers/test_trainer_packed.py::test_packed_equals_separate[langevin]",),
           "every trial of a pack uses trial 0's Langevin noise"),
    Mutant("sampler-bits", "trainers/rng.py",
           "torch.bitwise_right_shift(z, 16, out=pair[..., 1])",
           "torch.bitwise_right_shift(z, 17, out=pair[..., 1])",
           ("tests/unit/trainers/test_trainer_rng.py",), "the second float32 of each draw from other bits"),
    Mutant("submission-lock", "cluster/submit_lock.py",
           "        lock.acquire(timeout=0)\n", "        pass\n",
           ("tests/unit/cluster/test_cluster_status_resume.py::test_concurrent_resumes_do_not_double_submit",),
           "no file lock on submit/resume"),
    Mutant("lock-holder-stale", "cluster/submit_lock.py",
           "        if not pid_alive(self.pid):\n            return True\n",
           "        if not pid_alive(self.pid):\n            return False\n",
           ("tests/unit/cluster/test_submit_lock.py",),
           "the record of a holder that has ended is named as the holder"),
    Mutant("root-overrides", "jobs/frozen.py",
           "    if not unasked:\n", "    if True:\n",
           ("tests/unit/drosweep/test_root_memory.py", "tests/unit/jobs/test_jobs_overrides.py"),
           "commands without the --set flags do not apply the root's"),
    Mutant("grid-growth", "jobs/study.py",
           "return _digest({k: v for k, v in self.science().items() if k not in GRID_KEYS})",
           "return _digest(self.science())",
           ("tests/unit/jobs/test_grid_growth.py",),
           "a grid that grows is refused as another study"),
    Mutant("submission-undo", "cluster/submission.py",
           "        if not job_ids:  # refused before anything was submitted: leave no trace\n",
           "        if False:\n",
           ("tests/unit/cluster/test_cluster_status_resume.py", "tests/unit/drosweep/test_cli_submit.py"),
           "a refused submission leaves its folder and lock behind"),
    Mutant("study-cpus", "jobs/study.py",
           "MAX_CPUS_PER_TASK = 4096 ", "MAX_CPUS_PER_TASK = 2**31 - 1 ",
           ("tests/unit/jobs/test_study_bounds.py", "tests/unit/jobs/test_jobs_study.py",
            "tests/unit/drosweep/test_cli_bad_input.py::test_fuzz_study_values"),
           "cpus_per_task up to 2^31-1"),
    Mutant("study-radius-zero", "jobs/study.py",
           "or not math.isfinite(item) or item <= 0:", "or not math.isfinite(item) or item < 0:",
           ("tests/unit/jobs/test_study_bounds.py", "tests/unit/jobs/test_study_properties.py",
            "tests/unit/jobs/test_jobs_study.py",
            "tests/unit/drosweep/test_cli_bad_input.py::test_fuzz_study_values"),
           "a radius of 0 accepted"),
    Mutant("study-hidden", "trainers/spec.py",
           "        if self.hidden > MAX_HIDDEN:", "        if self.hidden > 2 * MAX_HIDDEN:",
           ("tests/unit/jobs/test_study_bounds.py", "tests/unit/jobs/test_study_properties.py",
            "tests/unit/jobs/test_jobs_study.py", "tests/unit/trainers/test_trainer_spec_data.py",
            "tests/unit/drosweep/test_cli_bad_input.py::test_fuzz_study_values"),
           "hidden up to twice its limit"),
)


def _copy(rev: str | None, dest: Path) -> None:
    """The project at `rev` (a commit) or, without one, the working tree (tracked and untracked
    files that git does not ignore) into dest."""
    if rev is not None:
        archive = subprocess.run(["git", "archive", rev], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _selection(scratch: Path, tests: tuple[str, ...]) -> list[str]:
    return [t for t in tests if (scratch / t.split("::")[0]).is_file()]


def _pytest(python: str, scratch: Path, ids: list[str], timeout: float,
            deselect: tuple[str, ...] = (), stop_first: bool = True
            ) -> tuple[str, float, list[str]]:
    """(outcome, seconds, node ids that failed) of one pytest run in the scratch copy."""
    env = {**os.environ, "PYTHONPATH": str(scratch), "OMP_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    command = [python, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "--no-header",
               *(["-x"] if stop_first else []), *ids]
    for node in deselect:
        command += ["--deselect", node]
    start = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, []
    rc = proc.returncode
    failed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
    outcome = {0: "survived", 1: "killed"}.get(rc, f"error (pytest exit {rc})")
    if rc not in (0, 1):
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return outcome, time.monotonic() - start, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a commit to mutate (default: the working tree)")
    parser.add_argument("--only", help="comma-separated mutant names")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant")
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    mutants = MUTANTS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {m.name for m in MUTANTS}
        if unknown:
            parser.error(f"unknown mutant(s): {', '.join(sorted(unknown))}")
        mutants = tuple(m for m in MUTANTS if m.name in wanted)
    if args.list:
        for m in mutants:
            print(f"{m.name:24} {m.path:30} {m.why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="drosweep-mutation-") as tmp:
        scratch = Path(tmp)
        _copy(args.rev, scratch)
        where = subprocess.run([args.python, "-c", "import trainers; print(trainers.__file__)"],
                               cwd=scratch, env={**os.environ, "PYTHONPATH": str(scratch)},
                               capture_output=True, text=True, check=True).stdout.strip()
        if not where.startswith(str(scratch)):
            print(f"mutation: the scratch copy is not what the tests import ({where})",
                  file=sys.stderr)
            return 2
        applicable: list[Mutant] = []
        for m in mutants:
            count = (scratch / m.path).read_text().count(m.old)
            if count != 1:
                print(f"{m.name:24} not applicable at this revision ({count} matches)")
            elif not _selection(scratch, m.tests):
                print(f"{m.name:24} not applicable: none of its test files at this revision")
            else:
                applicable.append(m)
        baseline = sorted({t for m in applicable for t in _selection(scratch, m.tests)})
        outcome, seconds, broken = _pytest(args.python, scratch, baseline, args.timeout * 2,
                                           stop_first=False)
        print(f"{'(baseline)':24} {outcome:10} {seconds:6.1f}s  unmutated, every selected test")
        if outcome.startswith("error") or outcome == "timeout":
            print("mutation: the unmutated tests do not run; fix them first", file=sys.stderr)
            return 2
        for node in broken:  # failing without a mutant: they would count every mutant killed
            print(f"{'':24} left out: {node} fails unmutated")
        results: dict[str, str] = {}
        for m in applicable:
            target = scratch / m.path
            pristine = target.read_text()
            target.write_text(pristine.replace(m.old, m.new))
            try:
                outcome, seconds, _ = _pytest(args.python, scratch,
                                              _selection(scratch, m.tests), args.timeout,
                                              tuple(broken))
            finally:
                target.write_text(pristine)
            results[m.name] = outcome
            print(f"{m.name:24} {outcome:10} {seconds:6.1f}s  {m.why}", flush=True)
    killed = sum(o in ("killed", "timeout") for o in results.values())
    print(f"mutation score: {killed}/{len(results)} killed"
          + (f" ({len(mutants) - len(results)} not applicable)" if len(results) < len(mutants)
             else ""))
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
