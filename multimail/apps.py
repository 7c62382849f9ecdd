from __future__ import annotations

from django.apps import AppConfig


class MultimailConfig(AppConfig):
    name = "multimail"
    verbose_name = "MultiMail core"
