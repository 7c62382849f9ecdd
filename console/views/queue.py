"""The pending queue: every held email, decided inline, refreshed by polling."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from console.access import ConsoleRequest, error_message, operator_required
from console.csp import EMAIL_PAGE_CSP
from console.htmx import render_page
from console.rendering import email_body_render
from mailboxes.models import Direction, Email
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from oversight.facts import decision_facts, decision_facts_bulk
from oversight.selectors import (
    pending_count,
    pending_review_get,
    pending_review_page,
    pending_summary,
)
from oversight.services import DecisionStatus, email_decide


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def queue(request: ConsoleRequest) -> HttpResponse:
    summary = pending_summary(account=request.account)
    polling = request.GET.get("v") is not None
    if polling and request.GET["v"] == summary.version:
        # Nothing was held or decided since the last render: htmx swaps nothing on a 204.
        return HttpResponse(status=204)
    try:
        page = pending_review_page(account=request.account, params=request.GET)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-queue")
    images_for = request.GET.get("images", "")
    facts = decision_facts_bulk(emails=page.items)
    for email in page.items:
        email.rendered = email_body_render(email=email, load_images=images_for == email.pk)
        email.facts = facts[email.pk]
    context = {
        "items": page.items,
        "next_cursor": page.next_cursor,
        "version": summary.version,
        "section": "queue",
        "pending_count": summary.count,
        "oob": polling,
    }
    return render_page(request, "console/queue.html", context, partial="queue-list")


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def queue_item(request: ConsoleRequest, email_id: str) -> HttpResponse:
    """One held email (for "load images"); a decided or unknown one sends back to the queue."""
    email = pending_review_get(account=request.account, email_id=email_id)
    if email is None:
        messages.info(request, "That email is no longer waiting for a decision.")
        if request.htmx:
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
def decide(request: ConsoleRequest, email_id: str) -> HttpResponse:
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "").strip()[:1000]
    decided = None
    outcome = ""
    try:
        decision = email_decide(
            actor=request.actor,
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
    if not request.htmx:
        return redirect("console-queue")
    return render_page(
        request,
        "console/queue.html",
        {
            "decided": decided,
            "outcome": outcome,
            "decided_id": email_id,
            "oob": True,
            "pending_count": pending_count(account=request.account),
        },
        partial="decided-item",
    )
