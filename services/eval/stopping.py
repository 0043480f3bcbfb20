"""A sweep stops the way Ctrl-C stops it when it is asked to by any other means: ``SIGTERM`` (``kill``, a
scheduler), ``SIGHUP`` (its terminal closed) or its launcher going away (``./pants run`` killed: the sweep
is its child, and nothing would tell it otherwise). Stopping raises ``KeyboardInterrupt`` in the main thread,
so the sweep's own clean-up runs: Ray workers killed, a Ray it started shut down, stored episodes kept.

A detached run (``nohup``: SIGHUP ignored, which children inherit) keeps running when its launcher goes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: how often the launcher is looked for (seconds)
LAUNCHER_POLL_S = 0.5


class Stop:
    """Which signal stopped the sweep (for the exit status ``128 + signal``), once one has."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def exit_status(self) -> int:
        return 128 + (self.signal or signal.SIGINT)


@contextlib.contextmanager
def stop_like_ctrl_c() -> Iterator[Stop]:
    """While inside: the handlers (main thread only) and the launcher watch; the previous handlers after."""
    stop = Stop()
    done = threading.Event()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if stop.signal is None:
            stop.signal = signum
            raise KeyboardInterrupt
        # A second signal while cleaning up: let the clean-up finish.

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        stop.signal = stop.signal or signum
        raise KeyboardInterrupt

    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, on_sigint)
    # Detached on purpose (nohup: SIGHUP ignored): outlive the launcher and the terminal.
    attached = previous[signal.SIGHUP] is not signal.SIG_IGN
    if attached:
        signal.signal(signal.SIGHUP, interrupt)
        launcher = os.getppid()

        def watch_launcher() -> None:
            while not done.wait(LAUNCHER_POLL_S):
                if os.getppid() != launcher:  # reparented: the launcher is gone
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

        threading.Thread(target=watch_launcher, name="launcher-watch", daemon=True).start()
    try:
        yield stop
    finally:
        done.set()
        for number, handler in previous.items():
            signal.signal(number, handler)
