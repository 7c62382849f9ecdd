"""Settings for the worker subprocess of the real-worker tests: the project's settings with
a mailer that can be made slow, so a test can kill the worker while a send is under way."""

from __future__ import annotations

from multimail.settings import *  # noqa: F403
from multimail.settings import MULTIMAIL_OUTBOX_DIR

MAILERS = {
    "default": {
        "BACKEND": "tests.outbound.slow_backend.SlowOutboxBackend",
        "OPTIONS": {"directory": str(MULTIMAIL_OUTBOX_DIR)},
    }
}

# Redis hands an unacknowledged task (its worker was killed) to another worker after this
# many seconds; production keeps the project's hour, the test wants it within seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 5}
# A killed worker's delivery claim, likewise: seconds, not the project's two minutes.
DELIVERY_CLAIM_LEASE_SECONDS = 2
