"""The pending queue: every held email, decided inline, refreshed by polling."""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from mailboxes.models import Direction, Email
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from multimail.pagination import cursor_paginate
from oversight.console.access import error_message, operator_required
from oversight.console.csp import EMAIL_PAGE_CSP
from oversight.console.htmx import pending_count, render_page
from oversight.console.rendering import email_body_render
from oversight.facts import decision_facts, decision_facts_bulk
from oversight.selectors import pending_emails
from oversight.services import DecisionStatus, email_decide

QUEUE_PAGE_SIZE = 20


def queue_version(account_pending: dict[str, object]) -> str:
    """A short fingerprint of the pending set: it changes when mail is held or decided."""
    raw = f"{account_pending['count']}:{account_pending['latest']}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _queue_items(request: HttpRequest) -> tuple[list[Email], str | None]:
    queryset = pending_emails(account=request.account)  # type: ignore[attr-defined]
    page = cursor_paginate(queryset, request.GET, default_limit=QUEUE_PAGE_SIZE)
    images_for = request.GET.get("images", "")
    facts = decision_facts_bulk(emails=page.items)
    for email in page.items:
        email.rendered = email_body_render(  # type: ignore[attr-defined]
            email=email, load_images=images_for == email.pk
        )
        email.facts = facts[email.pk]  # type: ignore[attr-defined]
    return page.items, page.next_cursor


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def queue(request: HttpRequest) -> HttpResponse:
    account = request.account  # type: ignore[attr-defined]
    summary = pending_emails(account=account).aggregate(count=Count("id"), latest=Max("id"))
    version = queue_version(summary)
    polling = request.GET.get("v") is not None
    if polling and request.GET["v"] == version:
        # Nothing was held or decided since the last render: htmx swaps nothing on a 204.
        return HttpResponse(status=204)
    try:
        items, next_cursor = _queue_items(request)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-queue")
    context = {
        "items": items,
        "next_cursor": next_cursor,
        "version": version,
        "section": "queue",
        "pending_count": summary["count"],
        "oob": polling,
    }
    return render_page(request, "console/queue.html", context, partial="queue-list")


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def queue_item(request: HttpRequest, email_id: str) -> HttpResponse:
    """One held email (for "load images"); a decided or unknown one sends back to the queue."""
    email = (
        pending_emails(account=request.account)  # type: ignore[attr-defined]
        .filter(pk=email_id)
        .first()
    )
    if email is None:
        messages.info(request, "That email is no longer waiting for a decision.")
        if getattr(request, "htmx", False):
            # A fragment swap would nest the whole queue page inside the item.
            return HttpResponseClientRedirect(reverse("console-queue"))
        return redirect("console-queue")
    email.rendered = email_body_render(  # type: ignore[attr-defined]
        email=email, load_images=request.GET.get("images") == "1"
    )
    email.facts = decision_facts(email=email)  # type: ignore[attr-defined]
    return render_page(
        request,
        "console/queue.html",
        {"items": [email], "item": email, "section": "queue", "version": ""},
        partial="queue-item",
    )


def _outcome_text(status: DecisionStatus, email: Email) -> str:
    if status == DecisionStatus.REJECTED:
        return "Rejected: the email will never be sent or shown."
    if status == DecisionStatus.APPROVED_AND_SENT:
        return "Approved: the email is on its way."
    if email.direction == Direction.INBOUND:
        return "Approved: the agent can read it now."
    return "Approved: it will be sent at its scheduled time."


@require_POST
@operator_required
def decide(request: HttpRequest, email_id: str) -> HttpResponse:
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "").strip()[:1000]
    decided = None
    outcome = ""
    try:
        decision = email_decide(
            actor=request.actor,  # type: ignore[attr-defined]
            email_id=email_id,
            action=action,
            reason=reason,
            request_id=request_id_of(request),
        )
    except ApiError as error:
        error_message(request, error)
    else:
        decided = decision.email
        outcome = _outcome_text(decision.status, decided)
        messages.success(request, f"{outcome} ({decided.subject or 'no subject'})")
    if not getattr(request, "htmx", False):
        return redirect("console-queue")
    return render_page(
        request,
        "console/queue.html",
        {
            "decided": decided,
            "outcome": outcome,
            "decided_id": email_id,
            "oob": True,
            "pending_count": pending_count(account=request.account),  # type: ignore[attr-defined]
        },
        partial="decided-item",
    )
