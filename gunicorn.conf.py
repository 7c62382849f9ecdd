"""Gunicorn settings, read by every gunicorn started from this directory (make run, the
Procfile); the command line adds the bind address and the worker counts."""

from __future__ import annotations

import os
from typing import Any

# The runtime control socket is one path per user: two servers on one machine (two
# checkouts, a test run next to make run) would take it from each other. Nothing uses it.
control_socket_disable = True

# Each answer's request id and the worker that served it, next to the usual fields. The
# uvicorn workers of multimail.asgi write their access lines in this same layout.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms pid=%(p)s request_id=%({x-request-id}o)s'


def child_exit(server: Any, worker: Any) -> None:
    # With PROMETHEUS_MULTIPROC_DIR the metrics of a worker that exited stay counted, but
    # its live gauges must be dropped.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


# A worker told to stop has answered its last request (or, on SIGINT/SIGQUIT, was told to
# drop it) and its log lines are written. Tearing the interpreter down then collects every
# module's objects: half a second of CPU, several seconds on a busy host, longer than a
# stop may take (the arbiter SIGKILLs the worker after --graceful-timeout). So a worker
# that stops exits at once. Boot failures and crashes keep the normal exit and its status,
# which the arbiter reads.
def worker_int(worker: Any) -> None:
    os._exit(0)


def worker_exit(server: Any, worker: Any) -> None:
    if worker.booted and not worker.alive:
        os._exit(0)
