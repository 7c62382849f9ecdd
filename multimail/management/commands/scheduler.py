"""``manage.py scheduler``: run the periodic jobs of CELERY_BEAT_SCHEDULE until stopped."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.core.management.base import BaseCommand

from multimail.scheduler import Scheduler, scheduled_jobs
from multimail.shutdown import exit_without_teardown, wait_for_stop_signal

logger = logging.getLogger("multimail.scheduler")

# A stop waits this long for a job under way, well inside a process manager's patience.
STOP_GRACE_SECONDS = 3.0


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (the Celery beat schedule): in this process when there is no "
        "broker, else enqueued for the workers. Run exactly one."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from multimail.celery import app

        app.loader.import_default_modules()  # registers every task the schedule names
        jobs = scheduled_jobs()
        scheduler = Scheduler(jobs)
        thread = threading.Thread(target=scheduler.run_forever, name="scheduler", daemon=True)
        thread.start()
        where = "enqueued for the workers" if app.conf.broker_url else "run in this process"
        self.stdout.write(
            f"Scheduler: {len(jobs)} periodic jobs, {where} "
            f"({', '.join(f'{job.name} every {job.every_seconds:g}s' for job in jobs)})"
        )
        wait_for_stop_signal()
        scheduler.stopping.set()
        thread.join(timeout=STOP_GRACE_SECONDS)
        if thread.is_alive():
            logger.warning("scheduler_stop_abandoned_job grace_seconds=%s", STOP_GRACE_SECONDS)
        self.stdout.write("Scheduler stopped")
        exit_without_teardown()
