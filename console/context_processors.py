"""What every console template may read besides its view's context."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def refresh(request: HttpRequest) -> dict[str, Any]:
    # The queue list and the counts poll at this interval (hx-trigger "every Ns").
    return {"refresh_seconds": settings.CONSOLE_REFRESH_SECONDS}
