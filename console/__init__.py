"""The operator console: server-rendered pages (HTMX-enhanced) over the apps' services.

It depends on the domain apps (accounts, mailboxes, billing, oversight); none of them
imports it.
"""
