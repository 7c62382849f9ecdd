from __future__ import annotations

from django.apps import AppConfig


class MultimailConfig(AppConfig):
    name = "multimail"
    verbose_name = "MultiMail core"

    def ready(self) -> None:
        # Registers the ``any_of`` lookup the paginated lists rely on.
        from multimail import lookups  # noqa: F401
