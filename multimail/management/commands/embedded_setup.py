"""``manage.py embedded_setup``: everything `make run` does before it starts the processes.

One process instead of four (migrate, createcachetable, collectstatic, seed_demo): each
Django start costs seconds of CPU on a small machine, and this runs on every start.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Prepare the embedded default: migrate, create the cache table, collect static files, "
        "create the metrics token file and the demo account, and print how to use them."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        if "cache" in settings.DATABASES:  # the database cache (no Redis)
            call_command("createcachetable", database="cache", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        token_file = settings.VAR_DIR / "metrics-token"
        if not token_file.exists():
            # make run reads it into METRICS_TOKEN unless that is set already.
            descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(24) + "\n")
        call_command("seed_demo", stdout=self.stdout)
        bearer = "$METRICS_TOKEN" if settings.METRICS_TOKEN else f"$(cat {token_file})"
        self.stdout.write(
            f'  Metrics:        curl -H "Authorization: Bearer {bearer}" '
            f"{settings.PUBLIC_BASE_URL}/metrics"
        )
