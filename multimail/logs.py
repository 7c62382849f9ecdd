"""Log lines that carry the request id, as text (embedded default) or JSON (production).

``RequestIdMiddleware`` puts the request id in a context variable for the length of the
request; the filter copies it onto every record logged meanwhile, whichever logger, so a
line from deep inside a service (or an in-process task the request ran) names its
request. JSON lines have one object per line with fixed keys plus the message's own
``key=value`` pairs left in ``message``, which log collectors parse either way.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or None,
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
