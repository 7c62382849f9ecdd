"""Rendering helpers: one view answers a whole page, or only a named partial for HTMX."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import Account, Operator
from accounts.selectors import admin_actions_awaiting
from oversight.selectors import pending_emails


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Full page for a normal request; ``template#partial`` when HTMX asks for a fragment.

    Full pages get the layout's context: the account, the person's other roles (for the
    account switcher), the pending count for the navigation badge and the number of admin
    actions awaiting approval.
    """
    htmx = bool(getattr(request, "htmx", False))
    name = f"{template}#{partial}" if partial and htmx else template
    account = getattr(request, "account", None)
    if account is not None:
        context.setdefault("account", account)
        context.setdefault("operator", request.operator)  # type: ignore[attr-defined]
        if "pending_count" not in context:
            context["pending_count"] = pending_count(account=account)
        if name == template:
            context.setdefault("approvals_count", admin_actions_awaiting(account=account).count())
            context.setdefault(
                "roles",
                list(
                    Operator.objects.filter(user_id=request.operator.user_id)  # type: ignore[attr-defined]
                    .select_related("account")
                    .order_by("account__name")
                ),
            )
    return render(request, name, context, status=status)


def pending_count(*, account: Account) -> int:
    return pending_emails(account=account).count()


def client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: a proxy in front sets it through the WSGI server, and trusting a
    # client-sent X-Forwarded-For would let anyone reset their failure counter.
    return str(request.META.get("REMOTE_ADDR", ""))
