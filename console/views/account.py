"""Activation, account settings, the oversight-email links, API keys."""

from __future__ import annotations

import json
from typing import cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.email_change import (
    email_change_confirm,
    email_change_preview,
    email_change_request,
    email_change_undo,
)
from accounts.selectors import (
    api_key_get,
    api_key_page,
    oversight_email_pending,
)
from accounts.services import AccountChanges, account_export_take, api_key_issue, api_key_revoke
from accounts.signup import account_confirm
from billing.services.pricing import session_key_claim
from console.access import ConsoleRequest, HtmxRequest, error_message, operator_required
from console.actions import operator_action_run
from console.confirmation import (
    Confirmation,
    confirmation_page,
    confirmation_redirect,
    is_confirmed,
)
from console.forms import (
    AccountDeleteForm,
    AccountSettingsForm,
    ApiKeyForm,
    ConfirmForm,
    OversightEmailForm,
    WelcomeForm,
)
from console.htmx import render_page
from console.prg import (
    feedback_keep,
    feedback_kept,
    form_keep,
    form_kept,
    show_once,
    shown_once,
)
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from multimail.ratelimit import client_ip
from oversight import admin_actions


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HtmxRequest) -> HttpResponse:
    """Account activation by the code from the activation email. The first API key is
    shown once, by the GET the POST redirects to (never stored in clear, never cached)."""
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
                mailbox = activation.mailbox
                show_once(
                    request,
                    "activation",
                    {
                        "account_name": activation.account.name,
                        "oversight_email": activation.account.oversight_email,
                        "scopes": list(activation.api_key.scopes),
                        "raw_key": activation.raw_key,
                        "mailbox_address": mailbox.address if mailbox else "",
                        "mailbox_mode": mailbox.get_oversight_mode_display() if mailbox else "",
                    },
                )
                return redirect("console-confirm")
        form_keep(request, form)
        return redirect("console-confirm")
    activation_shown = shown_once(request, "activation")
    if activation_shown is not None:
        return render_page(request, "console/confirm_done.html", {"activation": activation_shown})
    form = form_kept(request, ConfirmForm, initial={"code": request.GET.get("code", "")})
    return render_page(request, "console/confirm.html", {"form": form})


@never_cache
@require_http_methods(["GET", "POST"])
def oversight_email_confirm(request: HtmxRequest) -> HttpResponse:
    """The link mailed to a new oversight address. GET describes the change (a mail scanner
    fetching the link decides nothing); only the confirmed POST makes the change."""
    return _oversight_email_link(request, undo=False)


@never_cache
@require_http_methods(["GET", "POST"])
def oversight_email_undo(request: HtmxRequest) -> HttpResponse:
    """The link mailed to the previous oversight address: cancels or undoes the change."""
    return _oversight_email_link(request, undo=True)


def _oversight_email_link(request: HtmxRequest, *, undo: bool) -> HttpResponse:
    if request.method == "GET":
        try:
            change = email_change_preview(token=request.GET.get("token", ""), undo=undo)
        except ApiError as error:
            error_message(request, error)
            return redirect("console-login")
        account = change.account
        if undo:
            confirmation = Confirmation(
                title=f"Keep {change.old_email} as the oversight email?",
                detail=f"{change.new_email} was asked to oversee {account.name} "
                f"({account.slug}) by {change.requested_by}. Cancelling keeps {change.old_email}"
                f" (or puts it back) and removes the operator role the change gave "
                f"{change.new_email}.",
                button="Cancel the change",
                cancel_url=reverse("console-login"),
                section="",
            )
        else:
            confirmation = Confirmation(
                title=f"Oversee {account.name}?",
                detail=f"{change.new_email} becomes the oversight email of {account.name} "
                f"({account.slug}) instead of {change.old_email}: it approves the account's "
                f"mail and signs in to its console. {change.old_email} is told and can undo it.",
                button="Confirm",
                cancel_url=reverse("console-login"),
                section="",
            )
        return confirmation_page(request, confirmation)
    if not is_confirmed(request):
        return confirmation_redirect(request)
    token = request.POST.get("token", "")
    try:
        change = email_change_undo(token=token) if undo else email_change_confirm(token=token)
    except ApiError as error:
        error_message(request, error)
    else:
        if undo:
            messages.success(request, f"{change.old_email} is the oversight email.")
        else:
            messages.success(
                request,
                f"{change.new_email} is now the oversight email of {change.account.name}. "
                "Sign in with it.",
            )
    return redirect("console-login")


@never_cache
@require_http_methods(["GET", "POST"])
def welcome(request: HtmxRequest) -> HttpResponse:
    """Where Stripe sends the browser after pricing-checkout. The key is handed out by a
    POST (a button), never on the GET: link scanners and prefetchers must not use up a
    key that can be claimed only once. The POST redirects; the key is shown once after."""
    if request.method == "POST":
        form = WelcomeForm(request.POST)
        if form.is_valid():
            try:
                claimed = session_key_claim(session_id=form.cleaned_data["session_id"])
            except ApiError as error:
                error_message(request, error)
            else:
                show_once(request, "welcome", claimed)
                return redirect("console-welcome")
        query = urlencode({"session_id": request.POST.get("session_id", "")})
        return HttpResponseRedirect(f"{reverse('console-welcome')}?{query}")
    claimed_shown = shown_once(request, "welcome")
    if claimed_shown is not None:
        return render_page(request, "console/welcome_done.html", {"claimed": claimed_shown})
    if request.GET.get("checkout") == "cancelled":
        return render_page(request, "console/welcome.html", {"cancelled": True})
    form = WelcomeForm(initial={"session_id": request.GET.get("session_id")})
    return render_page(request, "console/welcome.html", {"form": form})


# --- Account settings -----------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@operator_required
def account_settings(request: ConsoleRequest) -> HttpResponse:
    """The settings PATCH /v1/account changes, as the operator: they apply at once."""
    account = request.account
    if request.method == "POST":
        form = AccountSettingsForm(request.POST)
        if form.is_valid():
            try:
                operator_action_run(
                    request,
                    admin_actions.ACCOUNT_UPDATE,
                    admin_actions.AccountUpdate(changes=cast(AccountChanges, form.cleaned_data)),
                )
            except ApiError as error:
                form_keep(request, form, error=error)
                feedback_keep(request, "settings", error.message, error=True)
            else:
                feedback_keep(request, "settings", "Settings saved.")
        else:
            form_keep(request, form)
        return redirect("console-account")
    initial = {name: getattr(account, name) for name in AccountSettingsForm.base_fields}
    return render_page(
        request,
        "console/account.html",
        {
            "settings_form": form_kept(request, AccountSettingsForm, initial=initial),
            "email_form": form_kept(
                request, OversightEmailForm, path=reverse("console-account-email")
            ),
            "email_pending": oversight_email_pending(account=account),
            "feedback": feedback_kept(request),
            "section": "account",
        },
    )


@require_POST
@operator_required
def account_oversight_email(request: ConsoleRequest) -> HttpResponse:
    """Ask a new oversight address to confirm; nothing changes until it does."""
    form = OversightEmailForm(request.POST)
    page = reverse("console-account")
    if not form.is_valid():
        form_keep(request, form)
        return redirect(page)
    new_email = form.cleaned_data["oversight_email"]
    try:
        # The request itself, not the account update: an update ignores the address it
        # already has, where the operator who typed it should hear so.
        email_change_request(
            actor=request.actor, new_email=new_email, request_id=request_id_of(request)
        )
    except ApiError as error:
        form_keep(request, form, error=error)
        feedback_keep(request, "email", error.message, error=True, path=page)
    else:
        feedback_keep(
            request,
            "email",
            f"{new_email} was sent a confirmation link. Nothing changes until it is followed; "
            f"{request.account.oversight_email} was told and can cancel.",
            path=page,
        )
    return redirect(page)


@never_cache
@require_GET
@operator_required
def account_export_view(request: ConsoleRequest) -> HttpResponse:
    """The account's data as a JSON download: GET /v1/export's body, its hourly limit and
    audit entry. A GET like the API's (a link behind sign-in; reading changes nothing but
    the limit), so no POST answers without a redirect."""
    try:
        data = account_export_take(actor=request.actor, request_id=request_id_of(request))
    except ApiError as error:
        feedback_keep(request, "export", error.message, error=True, path=reverse("console-account"))
        return redirect("console-account")
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"multimail-{request.account.slug}-export.json"
    )
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
@operator_required
def account_delete_view(request: ConsoleRequest) -> HttpResponse:
    """GET asks for the account's name typed out; only a POST with it deletes."""
    account = request.account
    if request.method == "GET":
        return render_page(
            request,
            "console/account_delete.html",
            {"form": form_kept(request, AccountDeleteForm), "section": "account"},
        )
    form = AccountDeleteForm(request.POST)
    if not form.is_valid():
        form_keep(request, form)
        return redirect("console-account-delete")
    name = account.name
    try:
        if form.cleaned_data["account_name"].strip() != name:
            raise ApiError(
                "validation_error",
                f"Type the account's name, {name}, exactly as shown to delete it.",
                param="account_name",
            )
        operator_action_run(request, admin_actions.ACCOUNT_DELETE, admin_actions.AccountDelete())
    except ApiError as error:
        form_keep(request, form, error=error)
        return redirect("console-account-delete")
    # The account and its operators are gone: nothing of this session is left to use.
    logout(request)
    messages.success(request, f"{name} and all its data are deleted.")
    return redirect("console-login")


@never_cache
@require_http_methods(["GET", "POST"])
@operator_required
def api_keys(request: ConsoleRequest) -> HttpResponse:
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                key, raw_key = api_key_issue(
                    actor=request.actor,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    request_id=request_id_of(request),
                )
            except ApiError as error:
                error_message(request, error)
            else:
                messages.success(request, f"Key {key.name} created. Copy it now.")
                show_once(request, "api_key", {"name": key.name, "raw_key": raw_key})
                return redirect("console-keys")
        form_keep(request, form)
        return redirect("console-keys")
    show_revoked = request.GET.get("revoked") == "1"
    try:
        page = api_key_page(account=request.account, params=request.GET, revoked=show_revoked)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-keys")
    return render_page(
        request,
        "console/keys.html",
        {
            "form": form_kept(request, ApiKeyForm),
            "keys": page.items,
            "next_cursor": page.next_cursor,
            "show_revoked": show_revoked,
            "created_key": shown_once(request, "api_key"),
            "section": "keys",
        },
    )


@require_http_methods(["GET", "POST"])
@operator_required
def api_key_revoke_view(request: ConsoleRequest, key_id: str) -> HttpResponse:
    """GET asks for confirmation; only a confirmed POST revokes."""
    if request.method == "GET":
        try:
            key = api_key_get(account=request.account, key_id=key_id)
        except ApiError as error:
            error_message(request, error)
            return redirect("console-keys")
        return confirmation_page(
            request,
            Confirmation(
                title=f"Revoke key {key.name}?",
                detail=f"Every agent using {key.prefix}… loses access at once. "
                "This cannot be undone.",
                button="Revoke key",
                cancel_url=reverse("console-keys"),
                section="keys",
            ),
        )
    if not is_confirmed(request):
        return confirmation_redirect(request)
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
