"""The periodic jobs: what runs them, and the record of their last run.

``CELERY_BEAT_SCHEDULE`` is the one schedule. In production ``celery beat`` or
``manage.py scheduler`` (this module) reads it; under ``make run`` the scheduler does, and
with no broker each job runs right here (tasks are eager), so scheduled sends, the sweep
and webhook retries happen without a worker. With a broker the scheduler only enqueues, as
beat does, and a worker runs the job.

Each job runs on the scheduler's own thread; a stop request (SIGTERM, Ctrl-C) ends the loop
between jobs, and a job still running after the grace period is abandoned: every periodic
job is a set of compare-and-set steps, so an abandoned one is finished by its next run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from multimail.models import PeriodicJobRun

logger = logging.getLogger("multimail.scheduler")


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # the schedule entry
    task: str  # the Celery task it runs
    every_seconds: float


def scheduled_jobs(schedule: Mapping[str, Mapping[str, Any]] | None = None) -> list[Job]:
    entries: Mapping[str, Mapping[str, Any]] = (
        settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
    )
    jobs = []
    for name, entry in entries.items():
        every = entry["schedule"]
        # The project's schedule uses plain seconds; a timedelta is accepted too.
        seconds = every.total_seconds() if hasattr(every, "total_seconds") else float(every)
        jobs.append(Job(name=name, task=str(entry["task"]), every_seconds=seconds))
    return jobs


def periodic_task_names() -> frozenset[str]:
    return frozenset(job.task for job in scheduled_jobs())


def job_run_record(
    *, task: str, started_at: datetime, duration_seconds: float, succeeded: bool
) -> None:
    """Remember the last run of a periodic task, whichever process ran it (for /metrics)."""
    PeriodicJobRun.objects.update_or_create(
        name=task,
        defaults={
            "started_at": started_at,
            "finished_at": timezone.now(),
            "duration_seconds": duration_seconds,
            "succeeded": succeeded,
        },
    )


def _enqueue(task_name: str) -> None:
    from multimail.celery import app

    # apply_async honours task_always_eager: with no broker the job runs here and now.
    app.tasks[task_name].apply_async()


class Scheduler:
    """Runs each job at start, then every ``every_seconds`` (like beat: no catch-up)."""

    def __init__(
        self,
        jobs: list[Job],
        *,
        run: Callable[[str], None] = _enqueue,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = jobs
        self._run = run
        self._clock = clock
        self.stopping = threading.Event()

    def run_forever(self) -> None:
        now = self._clock()
        due = {job.name: now for job in self.jobs}
        while not self.stopping.is_set():
            for job in self.jobs:
                if self.stopping.is_set():
                    return
                if due[job.name] <= self._clock():
                    self._run_one(job)
                    due[job.name] = self._clock() + job.every_seconds
            if due:
                self.stopping.wait(max(0.0, min(due.values()) - self._clock()))
            else:
                self.stopping.wait()

    def _run_one(self, job: Job) -> None:
        try:
            self._run(job.task)
        except Exception:  # one failing job must not stop the others
            logger.exception("periodic_job_failed job=%s task=%s", job.name, job.task)
