"""Stopping long-running commands cleanly on SIGTERM (process managers) and SIGINT (Ctrl-C)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import NoReturn


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


def exit_without_teardown(status: int = 0) -> NoReturn:
    """End a long-running command once it has stopped its work: flush the output, then exit
    without the interpreter's teardown, which collects every loaded module and takes
    seconds of CPU on a busy host, more than a stop may take. Everything durable is
    committed by then; connections close with the process."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
