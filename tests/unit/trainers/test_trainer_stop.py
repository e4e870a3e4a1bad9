"""`stop_on_signals`: a signal calls back instead of ending the process, and only while the block
runs; outside the main thread nothing is installed."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from trainers.stop import stop_on_signals


def test_a_signal_calls_back_and_the_previous_handler_comes_back() -> None:
    seen: list[signal.Signals] = []
    before = signal.getsignal(signal.SIGUSR1)
    with stop_on_signals(seen.append, (signal.SIGUSR1, signal.SIGUSR2)):
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
    assert seen == [signal.SIGUSR1, signal.SIGUSR2]
    assert signal.getsignal(signal.SIGUSR1) == before


def test_restored_after_an_error_in_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RuntimeError, match="an error in the block"), \
            stop_on_signals(lambda _: None):
        assert signal.getsignal(signal.SIGTERM) != before
        raise RuntimeError("an error in the block")
    assert signal.getsignal(signal.SIGTERM) == before


def test_nothing_is_installed_outside_the_main_thread() -> None:
    seen: dict[str, object] = {}

    def worker() -> None:
        with stop_on_signals(lambda _: None, (signal.SIGUSR1,)):
            seen["handler"] = signal.getsignal(signal.SIGUSR1)

    before = signal.getsignal(signal.SIGUSR1)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["handler"] == before
