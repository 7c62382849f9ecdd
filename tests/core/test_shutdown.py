"""Long-running commands (the SMTP listener, the scheduler) stop on SIGTERM or SIGINT even
when the signal is taken by one of their other threads, which the kernel may pick."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import signal, threading
from multimail.shutdown import wait_for_stop_signal

started = threading.Event()

def other_thread():
    started.set()
    threading.Event().wait()

threading.Thread(target=other_thread, daemon=True).start()
started.wait()
# Blocked in the main thread, the signal can only go to the other thread.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
print("waiting", flush=True)
print(wait_for_stop_signal(), flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_taken_by_another_thread_ends_the_wait(signum: int) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "waiting"
        _wait_until_handled(child.pid)
        child.send_signal(signum)
        out, _ = child.communicate(timeout=10)
    finally:
        child.kill()
    assert out.strip() == str(int(signum))


def _wait_until_handled(pid: int) -> None:
    """Until the child catches SIGTERM (the wait installs it after SIGINT): a signal sent
    before that would end the child by its default action, not test the wait."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(
            next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
        )
        if caught >> (signal.SIGTERM - 1) & 1:
            return
        time.sleep(0.01)
    raise AssertionError("the child never caught SIGTERM")
