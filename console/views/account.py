"""Activation, admin actions awaiting approval, API keys, the audit log."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.selectors import admin_actions_awaiting, api_key_list, audit_entry_page
from accounts.services import api_key_issue, api_key_revoke
from accounts.signup import account_confirm
from billing.services.pricing import session_key_claim
from console.access import ConsoleRequest, HtmxRequest, error_message, operator_required
from console.forms import ApiKeyForm, ConfirmForm, WelcomeForm
from console.htmx import render_page
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from multimail.ratelimit import client_ip
from oversight.admin_actions import admin_action_approve, admin_action_deny


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HtmxRequest) -> HttpResponse:
    """Account activation by the code from the activation email. The first API key is
    shown on this response only (never stored in clear, never cached)."""
    if request.method == "POST":
        form = ConfirmForm(request.POST)
        if form.is_valid():
            try:
                activation = account_confirm(
                    code=form.cleaned_data["code"],
                    client_ip=client_ip(request),
                    request_id=request_id_of(request),
                )
            except ApiError as error:
                error_message(request, error)
            else:
                return render_page(request, "console/confirm_done.html", {"activation": activation})
    else:
        form = ConfirmForm(initial={"code": request.GET.get("code", "")})
    return render_page(request, "console/confirm.html", {"form": form})


@never_cache
@require_http_methods(["GET", "POST"])
def welcome(request: HtmxRequest) -> HttpResponse:
    """Where Stripe sends the browser after pricing-checkout. The key is handed out by a
    POST (a button), never on the GET: link scanners and prefetchers must not use up a
    key that can be claimed only once."""
    if request.GET.get("checkout") == "cancelled":
        return render_page(request, "console/welcome.html", {"cancelled": True})
    form = WelcomeForm(request.POST or None, initial={"session_id": request.GET.get("session_id")})
    if request.method == "POST" and form.is_valid():
        try:
            claimed = session_key_claim(session_id=form.cleaned_data["session_id"])
        except ApiError as error:
            error_message(request, error)
        else:
            return render_page(request, "console/welcome_done.html", {"claimed": claimed})
    return render_page(request, "console/welcome.html", {"form": form})


@require_http_methods(["GET"])
@operator_required
def approvals(request: ConsoleRequest) -> HttpResponse:
    pending = (
        admin_actions_awaiting(account=request.account)
        .select_related("requested_by")
        .order_by("-id")
    )
    return render_page(
        request, "console/approvals.html", {"pending": pending, "section": "approvals"}
    )


@require_POST
@operator_required
def approval_decide(request: ConsoleRequest, request_pk: str) -> HttpResponse:
    approve = request.POST.get("action") == "approve"
    try:
        done = (admin_action_approve if approve else admin_action_deny)(
            actor=request.actor,
            approval_id=request_pk,
        )
    except ApiError as error:
        error_message(request, error)
    else:
        messages.success(request, f"{done.action}: {'approved and done' if approve else 'denied'}.")
    return redirect("console-approvals")


@never_cache
@require_http_methods(["GET", "POST"])
@operator_required
def api_keys(request: ConsoleRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = api_key_issue(
                actor=request.actor,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                request_id=request_id_of(request),
            )
        except ApiError as error:
            error_message(request, error)
        else:
            messages.success(request, f"Key {created[0].name} created. Copy it now.")
            form = ApiKeyForm()
    keys = api_key_list(account=request.account)
    return render_page(
        request,
        "console/keys.html",
        {
            "form": form,
            "keys": keys,
            "created_key": created[0] if created else None,
            "raw_key": created[1] if created else None,
            "section": "keys",
        },
    )


@require_POST
@operator_required
def api_key_revoke_view(request: ConsoleRequest, key_id: str) -> HttpResponse:
    try:
        key = api_key_revoke(
            actor=request.actor,
            key_id=key_id,
            request_id=request_id_of(request),
        )
    except ApiError as error:
        error_message(request, error)
    else:
        messages.success(request, f"Key {key.name} ({key.prefix}…) is revoked.")
    return redirect("console-keys")


@require_http_methods(["GET"])
@operator_required
def audit_log(request: ConsoleRequest) -> HttpResponse:
    try:
        page = audit_entry_page(account=request.account, params=request.GET)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-audit")
    return render_page(
        request,
        "console/audit.html",
        {"entries": page.items, "next_cursor": page.next_cursor, "section": "audit"},
        partial="audit-rows",
    )
