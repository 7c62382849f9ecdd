"""The gunicorn worker class of the web processes: uvicorn's, serving ``multimail.asgi``.

Kept apart from ``multimail.asgi`` so that the gunicorn master, which loads this class,
does not load the application itself.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    # multimail.asgi writes the access line in gunicorn.conf.py's format (request id and
    # pid); uvicorn's own line would be a second one without them.
    CONFIG_KWARGS: dict[str, Any] = {**UvicornWorker.CONFIG_KWARGS, "access_log": False}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # On a stop uvicorn waits for open responses with no limit, and an event stream
        # (GET /v1/events) never ends by itself: gunicorn would SIGKILL the worker at
        # --graceful-timeout. A second before that uvicorn cancels what is left, so streams
        # end in order (their per-key slots freed) and the worker exits by itself.
        self.config.timeout_graceful_shutdown = max(1, int(self.cfg.graceful_timeout) - 1)

    def run(self) -> None:
        super().run()
        # uvicorn returns once it has answered its last request after a stop signal;
        # marked stopped, gunicorn.conf.py's worker_exit exits the process at once, as it
        # does for gunicorn's own workers. A boot failure raises instead and keeps its status.
        self.alive = False
