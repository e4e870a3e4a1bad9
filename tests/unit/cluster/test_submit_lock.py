"""A second submit/resume says at once who holds the root's lock (host, pid, command, since), then
waits; a record left by a holder that has ended is named as such, never as the holder."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import filelock
import pytest
from fake_scheduler import FAKE, FakeScheduler

from cluster import submit_lock
from cluster.errors import ClusterError
from drosweep.cli import main
from jobs import Paths
from studies import write_study

HOLDER = """
import sys, time
from cluster import submit_lock
from jobs.paths import Paths
lock = submit_lock.acquire(Paths(sys.argv[1]), 5)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
submit_lock.release(Paths(sys.argv[1]), lock)
"""


def hold(tmp_path: Path, root: Path, seconds: float) -> subprocess.Popen[str]:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(seconds)],
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[3])
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_second_submit_names_the_holder_then_times_out(
        tmp_path: Path, capsys: Any, fake: FakeScheduler,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cluster.submission.LOCK_TIMEOUT_S", 0.5)
    f = write_study(tmp_path, **FAKE)
    assert main(["submit", str(f)]) == 0
    capsys.readouterr()
    proc = hold(tmp_path, tmp_path / "root", 30)
    try:
        start = time.monotonic()
        assert main(["resume", str(f)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert time.monotonic() - start < 10
    finally:
        proc.kill()
        proc.wait()
    assert len(err) == 2, err
    said = (f"by pid {proc.pid} on host {socket.gethostname()} (holder.py "
            f"{tmp_path / 'root'} 30)")
    assert err[0].startswith(f"drosweep: the submit lock {tmp_path / 'root' / '.submit.lock'} "
                             f"is held since ") and said in err[0]
    assert err[0].endswith("; waiting up to 0.5 s")
    assert "another submit/resume holds" in err[1] and "after 0.5 s of waiting" in err[1] \
        and said in err[1]


def test_it_waits_for_the_holder_and_records_itself(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "root")
    paths.root.mkdir()
    proc = hold(tmp_path, paths.root, 1.5)
    lines: list[str] = []
    lock = submit_lock.acquire(paths, 30, say=lines.append)
    try:
        proc.wait()
        assert len(lines) == 1 and f"by pid {proc.pid}" in lines[0]
        record = json.loads(paths.lock_holder.read_text())
        assert record["pid"] != proc.pid and submit_lock.read_holder(paths) == \
            submit_lock.Holder(**record)
        assert submit_lock.holder_line(paths).startswith("held since")
    finally:
        submit_lock.release(paths, lock)
    assert not paths.lock_holder.exists()
    lines.clear()
    submit_lock.release(paths, submit_lock.acquire(paths, 30, say=lines.append))
    assert lines == []  # free: nothing said


def test_a_record_of_an_ended_holder_does_not_name_it(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "root")
    paths.root.mkdir()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    pid = int(ended.stdout)
    stale = submit_lock.Holder(host=socket.gethostname(), pid=pid, command="drosweep submit x",
                               since="2026-01-01 00:00:00 UTC")
    paths.lock_holder.write_text(json.dumps(asdict(stale)))
    taken, go = threading.Event(), threading.Event()

    def other() -> None:  # holds the lock and records nothing (a crash left the record)
        with filelock.FileLock(str(paths.lock)):
            taken.set()
            go.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert taken.wait(10)
        line = submit_lock.holder_line(paths)
        assert f"the last recorded holder, pid {pid} on host {socket.gethostname()} since " \
               f"2026-01-01 00:00:00 UTC, has ended" in line and "held since" not in line
        paths.lock_holder.unlink()
        assert "recorded no holder" in submit_lock.holder_line(paths)
        with pytest.raises(ClusterError, match="recorded no holder"):
            submit_lock.acquire(paths, 0.2, say=lambda _: None)
    finally:
        go.set()
        thread.join()
