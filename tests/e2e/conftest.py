from __future__ import annotations

# The real Celery worker of the mail-core tests.
from tests.outbound.conftest import celery_worker_process  # noqa: F401
