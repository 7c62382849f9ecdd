"""``AuditEntryFilter``: the one definition of how the audit log is filtered.

``GET /v1/audit-log`` and the console's audit page both page through
``accounts.selectors.audit_entry_page``, which applies it, and the schema documents its
parameters from it. The API offers no filter on the log yet (only ``limit`` and
``cursor``), so it declares none: a filter added here reaches the API, the console and the
OpenAPI document together.
"""

from __future__ import annotations

from django_filters import FilterSet

from accounts.models import AuditEntry


class AuditEntryFilter(FilterSet):
    class Meta:
        model = AuditEntry
        fields: list[str] = []
