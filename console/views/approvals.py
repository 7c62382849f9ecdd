"""Admin actions an agent asked for that wait for the operator: read, approve or deny."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from accounts.models import AdminActionRequest
from accounts.selectors import admin_actions_awaiting
from console.access import ConsoleRequest, error_message, operator_required
from console.forms import ApprovalDecisionForm
from console.htmx import render_page
from multimail.errors import ApiError
from multimail.pagination import cursor_paginate
from oversight.admin_actions import (
    API_KEY_CREATE,
    admin_action_approve,
    admin_action_deny,
    admin_action_summary,
)


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    request: AdminActionRequest
    summary: str
    # Approved here, a new key's secret is shown to nobody: only the agent's own call
    # repeated with the emailed code returns it.
    secret_unseen: bool


@require_GET
@operator_required
def approvals(request: ConsoleRequest) -> HttpResponse:
    try:
        page = cursor_paginate(
            admin_actions_awaiting(account=request.account).select_related("requested_by"),
            request.GET,
            default_limit=50,
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-approvals")
    rows = [
        ApprovalRow(
            pending,
            admin_action_summary(actor=request.actor, pending=pending),
            pending.action == API_KEY_CREATE.name,
        )
        for pending in page.items
    ]
    return render_page(
        request,
        "console/approvals.html",
        {"rows": rows, "next_cursor": page.next_cursor, "section": "approvals"},
    )


@require_POST
@operator_required
def approval_decide(request: ConsoleRequest, request_pk: str) -> HttpResponse:
    form = ApprovalDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Approve or Deny; a reason is at most 500 characters.")
        return redirect("console-approvals")
    try:
        if form.cleaned_data["action"] == "approve":
            done = admin_action_approve(actor=request.actor, approval_id=request_pk)
        else:
            done = admin_action_deny(
                actor=request.actor, approval_id=request_pk, reason=form.cleaned_data["reason"]
            )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-approvals")
    summary = admin_action_summary(actor=request.actor, pending=done)
    if form.cleaned_data["action"] == "deny":
        messages.success(request, f"{summary}: denied.")
    elif done.action == API_KEY_CREATE.name:
        messages.warning(
            request,
            f"{summary}: approved and done. Nobody has seen the key's secret, and nobody "
            "can now: its approval code is used up. If the agent needs the key, revoke it "
            "and let the agent ask again, then give it the emailed code instead.",
        )
    else:
        messages.success(request, f"{summary}: approved and done.")
    return redirect("console-approvals")
