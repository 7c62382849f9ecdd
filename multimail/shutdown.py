"""Stopping long-running commands cleanly on SIGTERM (process managers) and SIGINT (Ctrl-C)."""

from __future__ import annotations

import signal
import threading


def wait_for_stop_signal() -> int:
    """Block until SIGTERM or SIGINT arrives and return its number. Handling both means
    neither ends the process with a KeyboardInterrupt traceback from wherever it landed;
    the caller then stops its work in order."""
    received: list[int] = []
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
    stop.wait()
    return received[0]
