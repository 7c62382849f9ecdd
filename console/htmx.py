"""Rendering helpers: one view answers a whole page, or only a named partial for HTMX."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import render

from accounts.models import Operator
from accounts.selectors import operator_roles
from console.access import HtmxRequest
from mailboxes.quotas import account_sending_problems
from oversight.selectors import operator_counts


def render_page(
    request: HtmxRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Full page for a normal request; ``template#partial`` when HTMX asks for a fragment.

    Full pages get the layout's context: the account, the person's other roles (for the
    account switcher), the counts of the navigation badges (held mail, admin actions
    awaiting approval: oversight.selectors.operator_counts, which the refresh fragment
    _counts.html also reads), and why the account's mail cannot go out (the banner).
    """
    name = f"{template}#{partial}" if partial and request.htmx else template
    # Set by operator_required; the sign-in and activation pages have no operator.
    operator: Operator | None = getattr(request, "operator", None)
    if operator is not None:
        account = operator.account
        context.setdefault("account", account)
        context.setdefault("operator", operator)
        if name == template:
            if "counts" not in context:
                context["counts"] = operator_counts(account=account)
            context.setdefault("roles", operator_roles(user_id=operator.user_id))
            problems = account_sending_problems(account=account)
            context.setdefault("sending_problems", problems)
            context.setdefault("sending_stopped", any(p.stops_delivery for p in problems))
    return render(request, name, context, status=status)
