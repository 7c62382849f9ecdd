"""The Celery app. Without CELERY_BROKER_URL tasks run in-process (eager)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multimail.settings")

app = Celery("multimail")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _database_like_a_request(sender: Any = None, **_: Any) -> None:
    """A worker keeps its database connection from task to task (CELERY_DB_REUSE_MAX),
    so each task starts the way Django starts a request: a connection past CONN_MAX_AGE is
    closed, and with CONN_HEALTH_CHECKS one the server dropped is replaced on first use
    instead of failing the task. Eager tasks run inside the caller's request (maybe inside
    its transaction): they are left alone, as Celery's own fixup leaves them."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
