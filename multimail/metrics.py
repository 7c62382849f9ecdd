"""Prometheus metrics, served at /metrics (bearer ``METRICS_TOKEN``).

Two kinds of series:

- Counted where they happen (requests and their latency, task run times): prometheus-client
  metrics in each process. Under gunicorn, and whenever several processes run on one host,
  set ``PROMETHEUS_MULTIPROC_DIR`` to a directory they share (emptied before they start):
  each process writes its own file and /metrics adds them up (``make run`` does this).
- Read from the database or the broker at scrape time (emails by status, the oversight
  queue, webhook deliveries, periodic job runs, the task queue): the same answer from any
  web process on any host. Apps contribute these with ``register_scrape_collector``
  (mailboxes does, from its ``ready``), so this module imports no app above it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger("multimail.metrics")
request_logger = logging.getLogger("multimail.requests")

HTTP_REQUESTS = Counter(
    "multimail_http_requests",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "multimail_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TASK_DURATION = Histogram(
    "multimail_task_duration_seconds",
    "Run time of a task (in a worker, or in-process without a broker), by task and outcome.",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_scrape_collectors: list[Collector] = []


def register_scrape_collector(collector: Collector) -> None:
    """Add series computed at scrape time (a ``collect()`` yielding metric families)."""
    _scrape_collectors.append(collector)


def _counted_registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    counted = CollectorRegistry()
    multiprocess.MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
    return counted


def metrics_exposition() -> bytes:
    scraped = CollectorRegistry(auto_describe=False)
    for collector in _scrape_collectors:
        scraped.register(collector)
    return generate_latest(_counted_registry()) + generate_latest(scraped)


def serve_worker_metrics(**_: Any) -> None:
    """A Celery worker on a host without a web process serves its own counted series (task
    run times) on METRICS_WORKER_ADDRESS, a private ``host:port`` (no token: bind it where
    only the scraper reaches). The database series stay with the web's /metrics."""
    address = settings.METRICS_WORKER_ADDRESS
    if not address:
        return
    host, _colon, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1", registry=_counted_registry())


class RequestMetricsMiddleware:
    """Outermost: counts and times every request by its route pattern (never the raw path,
    which holds ids and, on some routes, secrets), and in JSON-log mode writes one line per
    request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = _route(request)
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route, method).observe(elapsed)
        if settings.LOG_FORMAT == "json":
            request_logger.info(
                "request method=%s route=%s status=%s duration_ms=%.1f",
                method,
                route,
                response.status_code,
                elapsed * 1000,
            )
        return response


def _route(request: HttpRequest) -> str:
    if request.path.startswith(settings.STATIC_URL):
        return "static"
    match = request.resolver_match
    if match is None:
        # Answered by a middleware before URL resolution (an idempotent replay or
        # conflict, a throttle, the region block): count it under its route all the same.
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched"
    return f"/{match.route}"


# --- tasks -------------------------------------------------------------------------------

_task_started: dict[str, tuple[float, datetime]] = {}


def task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _task_started[task_id] = (time.perf_counter(), timezone.now())


def task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    began = _task_started.pop(task_id or "", None)
    if began is None or task is None:
        return
    duration = time.perf_counter() - began[0]
    TASK_DURATION.labels(task.name, state or "UNKNOWN").observe(duration)
    from multimail.scheduler import job_run_record, periodic_task_names

    if task.name not in periodic_task_names():
        return
    try:
        job_run_record(
            task=task.name,
            started_at=began[1],
            duration_seconds=duration,
            succeeded=state == "SUCCESS",
        )
    except Exception:  # the record is for monitoring; the job itself already ran
        logger.warning("periodic_job_record_failed task=%s", task.name, exc_info=True)


def connect_task_signals() -> None:
    from celery import signals

    signals.task_prerun.connect(task_started, weak=False)
    signals.task_postrun.connect(task_finished, weak=False)
    signals.worker_ready.connect(serve_worker_metrics, weak=False)


# --- series read at scrape time ----------------------------------------------------------


class CoreCollector(Collector):
    """The last run of each periodic job, and the depth of the task queue."""

    def collect(self) -> Iterable[Metric]:
        from multimail.models import PeriodicJobRun
        from multimail.scheduler import periodic_task_names

        runs = {run.name: run for run in PeriodicJobRun.objects.all()}
        last = GaugeMetricFamily(
            "multimail_periodic_job_last_run_timestamp_seconds",
            "When each periodic job last finished (Unix time; 0: never since the database "
            "was created).",
            labels=["job"],
        )
        duration = GaugeMetricFamily(
            "multimail_periodic_job_last_duration_seconds",
            "How long the last run of each periodic job took.",
            labels=["job"],
        )
        success = GaugeMetricFamily(
            "multimail_periodic_job_last_success",
            "1 if the last run of the periodic job succeeded, else 0.",
            labels=["job"],
        )
        for name in sorted(periodic_task_names()):
            run = runs.get(name)
            finished = run.finished_at if run is not None else None
            last.add_metric([name], finished.timestamp() if finished else 0.0)
            duration.add_metric([name], (run.duration_seconds or 0.0) if run else 0.0)
            success.add_metric([name], 1.0 if run is not None and run.succeeded else 0.0)
        yield from (last, duration, success)
        depth = GaugeMetricFamily(
            "multimail_task_queue_depth",
            "Tasks waiting in the broker queue (always 0 without a broker: tasks run in-process).",
            labels=["queue"],
        )
        for queue, count in _queue_depths():
            depth.add_metric([queue], count)
        yield depth


def _queue_depths() -> list[tuple[str, float]]:
    from multimail.celery import app

    queue = app.conf.task_default_queue
    if not settings.CELERY_BROKER_URL:
        return [(queue, 0.0)]
    try:
        with app.connection_for_read() as connection:
            channel: Any = connection.default_channel  # kombu's stubs omit queue_declare
            declared = channel.queue_declare(queue=queue, passive=True)
            return [(queue, float(declared.message_count))]
    except Exception:  # broker errors differ by transport; the scrape goes on without it
        logger.warning("metrics_queue_depth_unavailable queue=%s", queue, exc_info=True)
        return []
