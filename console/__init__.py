"""The operator console: server-rendered pages (HTMX-enhanced) over the apps' services."""
