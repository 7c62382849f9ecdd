"""The audit log: filtered, linked to the resources it concerns, exported as CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.audit_values import audit_details
from accounts.filters import AuditLogFilter
from accounts.models import AuditEntry
from accounts.selectors import audit_log_filtered, audit_log_page, audit_resources_existing
from console.access import ConsoleRequest, error_message, operator_required
from console.htmx import render_page
from multimail.errors import ApiError

CSV_COLUMNS = [
    "created_at",
    "actor",
    "actor_kind",
    "action",
    "resource_type",
    "resource_id",
    "details",
    "metadata",
    "request_id",
]
# Rows read from the database at a time while the file streams.
EXPORT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class AuditRow:
    entry: AuditEntry
    details: list[str]
    link: str | None


def _resource_link(
    entry: AuditEntry, existing: dict[tuple[str, str], dict[str, Any]]
) -> str | None:
    """The console page of the entry's resource, if it still exists (None otherwise)."""
    found = existing.get((entry.resource_type, entry.resource_id))
    if found is None:
        return None
    resource_id = entry.resource_id
    match entry.resource_type:
        case "email":
            return reverse("console-email", args=[found["mailbox_id"], resource_id])
        case "mailbox":
            return reverse("console-mailbox", args=[resource_id])
        case "webhook":
            return reverse("console-webhook", args=[resource_id])
        case "domain":
            return reverse("console-domain", args=[resource_id])
        case "api_key":
            return reverse("console-keys")
        case "operator":
            return reverse("console-operators")
        case "admin_action":
            return reverse("console-approvals")
        case "suppression":
            return f"{reverse('console-suppression')}?q={resource_id}"
    return None


@require_GET
@operator_required
def audit_log(request: ConsoleRequest) -> HttpResponse:
    try:
        page = audit_log_page(account=request.account, params=request.GET)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-audit")
    existing = audit_resources_existing(account=request.account, entries=page.items)
    filters = request.GET.copy()
    filters.pop("cursor", None)
    return render_page(
        request,
        "console/audit.html",
        {
            "rows": [
                AuditRow(entry, audit_details(entry.metadata), _resource_link(entry, existing))
                for entry in page.items
            ],
            "next_cursor": page.next_cursor,
            "filter_form": AuditLogFilter(request.GET).form,
            "filter_query": filters.urlencode(),
            "filtered": any(value for key, value in filters.items()),
            "section": "audit",
        },
        partial="audit-rows",
    )


class _Echo:
    """A file whose write returns the line: csv.writer then yields rows to stream."""

    def write(self, value: str) -> str:
        return value


# A cell starting with one of these is a formula to a spreadsheet; key names and labels
# come from agents, so they are quoted to stay text (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _csv_lines(entries: Iterator[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries:
        yield writer.writerow(
            [
                _cell(value)
                for value in (
                    entry.created_at.astimezone(UTC).isoformat(),
                    entry.actor_label,
                    entry.actor_kind,
                    entry.action,
                    entry.resource_type,
                    entry.resource_id,
                    "; ".join(audit_details(entry.metadata)),
                    json.dumps(entry.metadata, sort_keys=True) if entry.metadata else "",
                    entry.request_id,
                )
            ]
        )


@require_GET
@operator_required
def audit_export(request: ConsoleRequest) -> HttpResponse | StreamingHttpResponse:
    """The whole filtered log as CSV, streamed: the same filters as the page, every page."""
    try:
        entries = audit_log_filtered(account=request.account, params=request.GET)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-audit")
    response = StreamingHttpResponse(
        _csv_lines(entries.iterator(chunk_size=EXPORT_CHUNK)), content_type="text/csv"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{request.account.slug}-{stamp}.csv"'
    )
    return response
