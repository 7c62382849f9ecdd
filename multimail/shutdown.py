"""Stopping long-running commands cleanly on SIGTERM (process managers) and SIGINT (Ctrl-C)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import NoReturn

# How soon a stop signal taken by another thread is noticed.
SIGNAL_CHECK_SECONDS = 0.2


def wait_for_stop_signal() -> int:
    """Block until SIGTERM or SIGINT arrives and return its number. Handling both means
    neither ends the process with a KeyboardInterrupt traceback from wherever it landed;
    the caller then stops its work in order."""
    received: list[int] = []

    def handle(signum: int, _frame: object) -> None:
        # Only an append, which takes no lock. A handler runs between two bytecodes of the
        # main thread, wherever it is: one that set a threading.Event deadlocked when it
        # ran while the main thread, waiting on that Event, held the Event's own lock.
        received.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
    # The kernel hands a process's signal to any of its threads. When another thread (the
    # SMTP listener's event loop, the scheduler's) takes it, Python only records it, and runs
    # the handler once the main thread next runs Python code: a wait without a timeout would
    # never return. Waking up now and then lets the handler run.
    while not received:
        time.sleep(SIGNAL_CHECK_SECONDS)
    return received[0]


def exit_without_teardown(status: int = 0) -> NoReturn:
    """End a long-running command once it has stopped its work: flush the output, then exit
    without the interpreter's teardown, which collects every loaded module and takes
    seconds of CPU on a busy host, more than a stop may take. Everything durable is
    committed by then; connections close with the process."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
