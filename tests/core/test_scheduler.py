"""The periodic-job scheduler: the production schedule, each job at start and again on its
interval, a failing job that does not stop the others. (The real process, its timing and
its stop are tested against `make run` in tests/embedded.)"""

from __future__ import annotations

import logging

import pytest
from django.conf import settings

from multimail.scheduler import Job, Scheduler, periodic_task_names, scheduled_jobs


def test_the_schedule_is_the_beat_schedule() -> None:
    jobs = scheduled_jobs()
    assert {job.name for job in jobs} == set(settings.CELERY_BEAT_SCHEDULE)
    sends = next(job for job in jobs if job.task == "mailboxes.tasks.send_due_scheduled")
    # A send_at email goes out within a minute of its time.
    assert sends.every_seconds <= 30
    assert "multimail.tasks.purge_expired_records" in periodic_task_names()


def test_every_job_runs_at_start_then_again(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []
    scheduler: Scheduler

    def run(task: str) -> None:
        ran.append(task)
        if task == "broken":
            raise RuntimeError("boom")
        if len(ran) == 6:
            scheduler.stopping.set()

    # An interval of 0 is due again at once: the loop never waits, so nothing here is timed.
    jobs = [Job(name=name, task=name, every_seconds=0.0) for name in ("a", "broken", "b")]
    scheduler = Scheduler(jobs, run=run)
    with caplog.at_level(logging.ERROR, logger="multimail.scheduler"):
        scheduler.run_forever()
    assert ran == ["a", "broken", "b", "a", "broken", "b"]
    assert "periodic_job_failed job=broken" in caplog.text


def test_stopping_before_a_job_is_due_runs_nothing_more() -> None:
    ran: list[str] = []
    scheduler = Scheduler([Job(name="a", task="a", every_seconds=3600)], run=ran.append)
    scheduler.stopping.set()
    scheduler.run_forever()
    assert ran == []


@pytest.mark.django_db
def test_a_job_run_records_its_last_run() -> None:
    from multimail.models import PeriodicJobRun
    from multimail.tasks import purge_expired_records

    purge_expired_records.apply()
    run = PeriodicJobRun.objects.get(name="multimail.tasks.purge_expired_records")
    assert run.succeeded
    assert run.duration_seconds is not None
    assert run.finished_at is not None
    assert run.finished_at >= run.started_at
