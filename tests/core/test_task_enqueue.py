"""Every task message is sent from one module, and oversight knows nothing of Celery.

Approving an email hands it to the outbound service (``email_release``), which enqueues
its delivery through ``mailboxes/enqueue.py``; whether tasks run in-process is asked of
that module too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "billing", "console", "mailboxes", "multimail", "oversight")
ENQUEUE = ROOT / "mailboxes" / "enqueue.py"
# The periodic-job scheduler stands in for celery beat: it sends the jobs of the beat
# schedule by task name, outside any transaction, as beat does.
SCHEDULER = ROOT / "multimail" / "scheduler.py"
SENDS = {"delay", "apply_async", "send_task"}


def _sources(*apps: str) -> list[Path]:
    return [
        path
        for app in apps
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_only_the_enqueue_module_sends_task_messages() -> None:
    found = []
    for path in _sources(*APPS):
        if path in (ENQUEUE, SCHEDULER):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SENDS
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.func.attr}(...)")
    assert not found, "\n".join(found)


def test_oversight_neither_imports_tasks_nor_reads_celery_settings() -> None:
    found = []
    for path in _sources("oversight"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.split(".")[-1] in ("tasks", "webhook_tasks", "celery", "enqueue"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {module}")
        source = path.read_text().lower()
        for word in ("celery", "always_eager", ".delay("):
            if word in source:
                found.append(f"{path.relative_to(ROOT)}: mentions {word}")
    assert not found, "\n".join(found)
