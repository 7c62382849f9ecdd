"""Under pytest-xdist, each worker process gets Redis databases of its own.

pytest-django gives every xdist worker a test database of its own (``test_multimail_gw0``,
``test_multimail_gw1``, ...). Redis has no such suffix, and the suite empties its Redis
database around every test (the cache) and around every worker test (the broker): two
xdist workers on one index would empty each other's. So worker ``gwN`` moves ``REDIS_URL``'s
index down by ``2 * N``; the index below a worker's cache index is its broker's
(``tests.outbound.conftest.worker_broker_url``). With 16 indexes and the cache on 15, as in
``make test``, that leaves room for 8 workers.

Loaded with ``-p`` (pyproject's addopts) and run at import: pytest-django reads the
settings, and with them ``REDIS_URL``, before any conftest is imported.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

INDEXES_PER_WORKER = 2


def index_below(url: str, by: int) -> str:
    """``url`` with its Redis index ``by`` lower (``redis://host:6379/15``, 2: ``.../13``)."""
    parts = urlsplit(url)
    index = int(parts.path.lstrip("/") or 0) - by
    if index < 0:
        raise RuntimeError(f"Redis URL {url!r} has no index {by} below its own")
    return urlunsplit(parts._replace(path=f"/{index}"))


_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = index_below(
        os.environ["REDIS_URL"], INDEXES_PER_WORKER * int(_worker.removeprefix("gw"))
    )
