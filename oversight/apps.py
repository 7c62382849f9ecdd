from __future__ import annotations

from django.apps import AppConfig


class OversightConfig(AppConfig):
    name = "oversight"
