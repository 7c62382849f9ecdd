from __future__ import annotations

from django.apps import AppConfig


class MultimailConfig(AppConfig):
    name = "multimail"
    verbose_name = "MultiMail core"

    def ready(self) -> None:
        # Registers the ``any_of`` lookup the paginated lists rely on.
        from multimail import lookups  # noqa: F401
        from multimail.metrics import CoreCollector, connect_task_signals, register_scrape_collector

        # Task run times and the last run of each periodic job, wherever tasks run.
        connect_task_signals()
        register_scrape_collector(CoreCollector())
