"""``AuditEntryFilter``: the one definition of how the audit log is filtered.

``GET /v1/audit-log`` and the console's audit page both page through
``accounts.selectors.audit_entry_page``, which applies it, and the schema documents its
parameters from it. The API offers no filter on the log yet (only ``limit`` and
``cursor``), so it declares none: a filter added here reaches the API, the console and the
OpenAPI document together.
"""

from __future__ import annotations

from django.forms import DateInput
from django_filters import CharFilter, ChoiceFilter, DateFilter, FilterSet

from accounts.models import AuditEntry

# Every kind of resource the services audit, as the console's filter offers them.
AUDIT_RESOURCE_TYPES = [
    ("account", "Account"),
    ("admin_action", "Admin action"),
    ("api_key", "API key"),
    ("contact", "Contact"),
    ("domain", "Domain"),
    ("email", "Email"),
    ("mailbox", "Mailbox"),
    ("operator", "Operator"),
    ("subscription", "Subscription"),
    ("suppression", "Suppression"),
    ("webhook", "Webhook"),
]


class AuditEntryFilter(FilterSet):
    class Meta:
        model = AuditEntry
        fields: list[str] = []


class AuditLogFilter(AuditEntryFilter):
    """The console's audit page and its CSV export: who, what, which resource, when. Kept
    off the API's filter until the API documents these parameters."""

    actor = CharFilter(field_name="actor_label", lookup_expr="icontains", label="Who")
    action = CharFilter(
        field_name="action",
        lookup_expr="startswith",
        label="Action",
        help_text='For example "api_key." for every API-key action.',
    )
    resource_type = ChoiceFilter(
        field_name="resource_type", choices=AUDIT_RESOURCE_TYPES, label="Resource type"
    )
    resource_id = CharFilter(field_name="resource_id", label="Resource id")
    since = DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label="From",
        widget=DateInput(attrs={"type": "date"}),
    )
    until = DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label="To",
        widget=DateInput(attrs={"type": "date"}),
    )

    class Meta(AuditEntryFilter.Meta):
        pass
