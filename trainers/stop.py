"""Stop a training on a signal at the next step instead of killing it mid-step.

The handler only calls back (the callers set the flag that the trainer polls after every
optimizer step, `should_stop`), so the step ends, a checkpoint is written and a resumed run goes
on from there. Used wherever a training runs in a process of its own: `drosweep train` and the
task of a job array (cluster/preemptible.py); the local runner uses it to turn SIGTERM into SystemExit
while its tasks run (cluster/executors/base.py).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType


@contextlib.contextmanager
def stop_on_signals(on_signal: Callable[[signal.Signals], None],
                    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
                    ) -> Iterator[None]:
    """While the block runs, each of `signals` calls `on_signal` instead of its usual action;
    the previous handlers are back afterwards. Python lets only the main thread install
    handlers: elsewhere nothing is installed (the caller's own thread gets the signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        on_signal(signal.Signals(signum))

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, _default(s) if old is None else old)


def _default(sig: signal.Signals) -> Callable[[int, FrameType | None], object] | int:
    """What a signal does when its handler was not installed from Python (seen as None)."""
    return signal.default_int_handler if sig is signal.SIGINT else signal.SIG_DFL
